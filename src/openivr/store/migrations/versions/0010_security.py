"""Security events (failed passwords, refusals, bans) and the bans themselves.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "security_event",
        sa.Column("event_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("user_id", sa.String(length=20), nullable=True),
        sa.Column("account_id", sa.String(length=20), nullable=True),
        sa.Column("node", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("security_event") as batch:
        # The guard's counts: an address's and a user name's recent failures.
        batch.create_index("ix_security_event_source_at", ["source", "at"])
        batch.create_index("ix_security_event_username_at", ["channel", "username", "at"])
        # The admins' list, and pruning by age.
        batch.create_index("ix_security_event_account_at", ["account_id", "at"])
        batch.create_index("ix_security_event_at", ["at"])
    op.create_table(
        "security_ban",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("banned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("security_ban") as batch:
        batch.create_index("ix_security_ban_until", ["until"])


def downgrade() -> None:
    op.drop_table("security_ban")
    op.drop_table("security_event")
