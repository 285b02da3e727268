"""SIP registrations of users' phones.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sip_registration",
        sa.Column("registration_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=20), nullable=False),
        sa.Column("contact", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("call_id", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("cseq", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("user_agent", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user_.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("registration_id"),
        sa.UniqueConstraint("user_id", "contact", name="uq_registration_contact"),
    )
    with op.batch_alter_table("sip_registration") as batch:
        batch.create_index("ix_sip_registration_user_id", ["user_id"])
        batch.create_index("ix_sip_registration_expires_at", ["expires_at"])


def downgrade() -> None:
    op.drop_table("sip_registration")
