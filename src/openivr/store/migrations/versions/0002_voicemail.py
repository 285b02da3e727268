"""Voicemail: messages, the delivery outbox and delivery attempts.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voicemail",
        sa.Column("message_id", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=20), nullable=False),
        sa.Column("app_id", sa.String(length=20), nullable=False),
        sa.Column("caller", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("dialed", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("call_id", sa.String(length=300), nullable=False, server_default=""),
        sa.Column("duration", sa.Float(), nullable=False, server_default="0"),
        sa.Column("size_bytes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("audio_key", sa.String(length=300), nullable=False),
        sa.Column("is_read", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        ),
        sa.ForeignKeyConstraint(["account_id"], ["account.account_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["app_id"], ["voiceapp.app_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id"),
    )
    with op.batch_alter_table("voicemail", schema=None) as batch_op:
        batch_op.create_index("ix_voicemail_account_id", ["account_id"], unique=False)
        batch_op.create_index("ix_voicemail_app_created", ["app_id", "created_at"], unique=False)

    op.create_table(
        "voicemail_delivery",
        sa.Column("delivery_id", sa.String(length=20), nullable=False),
        sa.Column("message_id", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=2000), nullable=False, server_default=""),
        sa.Column("state", sa.String(length=20), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        ),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=40), nullable=False, server_default=""),
        sa.Column("refused_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("give_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        ),
        sa.ForeignKeyConstraint(["message_id"], ["voicemail.message_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("delivery_id"),
    )
    with op.batch_alter_table("voicemail_delivery", schema=None) as batch_op:
        batch_op.create_index("ix_voicemail_delivery_message_id", ["message_id"], unique=False)
        batch_op.create_index(
            "ix_voicemail_delivery_due", ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "voicemail_delivery_attempt",
        sa.Column("attempt_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(length=20), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        ),
        sa.Column("outcome", sa.String(length=20), nullable=False, server_default=""),
        sa.Column("error", sa.Text(), nullable=False, server_default=""),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["voicemail_delivery.delivery_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("attempt_id"),
    )
    with op.batch_alter_table("voicemail_delivery_attempt", schema=None) as batch_op:
        batch_op.create_index(
            "ix_voicemail_delivery_attempt_delivery_id", ["delivery_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("voicemail_delivery_attempt")
    op.drop_table("voicemail_delivery")
    op.drop_table("voicemail")
