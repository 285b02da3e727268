"""Call recording: the account's `call_recording` setting, `record_calls` of numbers and users,
and the recordings themselves.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN on both databases (never a table copy: dropping the
    # old `account` would cascade to everything the account owns).
    op.add_column(
        "account",
        sa.Column("call_recording", sa.String(length=20), nullable=False, server_default="off"),
    )
    op.add_column(
        "user_", sa.Column("record_calls", sa.String(length=3), nullable=False, server_default="no")
    )
    op.add_column(
        "phonenumber",
        sa.Column("record_calls", sa.String(length=3), nullable=False, server_default="no"),
    )
    op.create_table(
        "call_recording",
        sa.Column("recording_id", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=20), nullable=False),
        sa.Column("call_id", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=20), nullable=True),
        sa.Column("node", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("status", sa.String(length=20), nullable=False, server_default="recording"),
        sa.Column("failure", sa.Text(), nullable=False, server_default=""),
        sa.Column("codec", sa.String(length=10), nullable=False, server_default=""),
        sa.Column("channels", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("file_key", sa.String(length=300), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("seconds", sa.Float(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("recording_id"),
    )
    op.create_index("ix_call_recording_call_id", "call_recording", ["call_id"])
    op.create_index("ix_call_recording_created_at", "call_recording", ["created_at"])
    op.create_index(
        "ix_call_recording_account_created", "call_recording", ["account_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("call_recording")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch operation would copy and drop
    # these tables, and dropping `account` would cascade to everything the account owns.
    op.drop_column("phonenumber", "record_calls")
    op.drop_column("user_", "record_calls")
    op.drop_column("account", "call_recording")
