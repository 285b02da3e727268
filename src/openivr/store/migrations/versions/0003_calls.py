"""Call records.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_record",
        sa.Column("record_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=20), nullable=True),
        sa.Column("from_number", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("to_number", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("node", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("apps", sa.JSON(), nullable=False),
        sa.Column("keys", sa.String(length=500), nullable=False, server_default=""),
        sa.Column("outcome", sa.String(length=40), nullable=False, server_default=""),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("transfers", sa.JSON(), nullable=False),
        sa.Column("sip_status", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ended_by", sa.String(length=20), nullable=False, server_default=""),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("record_id"),
    )
    with op.batch_alter_table("call_record") as batch:
        batch.create_index("ix_call_record_call_id", ["call_id"])
        batch.create_index("ix_call_record_account_id", ["account_id"])
        batch.create_index("ix_call_record_started_at", ["started_at"])


def downgrade() -> None:
    op.drop_table("call_record")
