"""Teams and schedules (opening hours); the system prompts "closed" and "all busy".

Every existing sysprompt app gets the two new standard prompts, so their messages can be
replaced like the others'.

Revision ID: 0008
Revises: 0007
"""

import secrets
import string
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NEW_SYSTEM_PROMPTS = (("closed", "Closed"), ("all_busy", "All busy"))


def _prompt_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "PR" + "".join(secrets.choice(alphabet) for _ in range(10))


def upgrade() -> None:
    op.create_table(
        "team",
        sa.Column("team_id", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("last_answered", sa.String(length=20), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.account_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("team_id"),
    )
    with op.batch_alter_table("team") as batch:
        batch.create_index("ix_team_account_id", ["account_id"])
    op.create_table(
        "schedule",
        sa.Column("schedule_id", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.account_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("schedule_id"),
    )
    with op.batch_alter_table("schedule") as batch:
        batch.create_index("ix_schedule_account_id", ["account_id"])

    bind = op.get_bind()
    apps = bind.execute(
        sa.text("SELECT app_id, account_id FROM voiceapp WHERE app_type = 'sysprompt'")
    ).all()
    prompt = sa.table(
        "prompt",
        *(
            sa.column(name)
            for name in (
                "prompt_id",
                "account_id",
                "app_id",
                "prompt_type",
                "key",
                "name",
                "message_key",
                "message_source",
                "message_text",
                "message_voice",
                "file_name",
                "audio_length",
                "size_bytes",
                "created_at",
            )
        ),
    )
    now = datetime.now(UTC)
    rows = [
        {
            "prompt_id": _prompt_id(),
            "account_id": account_id,
            "app_id": app_id,
            "prompt_type": "standard",
            "key": key,
            "name": name,
            "message_key": "",
            "message_source": "",
            "message_text": "",
            "message_voice": "",
            "file_name": "",
            "audio_length": 0.0,
            "size_bytes": 0,
            "created_at": now,
        }
        for app_id, account_id in apps
        for key, name in NEW_SYSTEM_PROMPTS
    ]
    if rows:
        op.bulk_insert(prompt, rows)


def downgrade() -> None:
    op.execute(
        sa.text(
            "DELETE FROM prompt WHERE prompt_type = 'standard' AND key IN ('closed', 'all_busy')"
            " AND app_id IN (SELECT app_id FROM voiceapp WHERE app_type = 'sysprompt')"
        )
    )
    with op.batch_alter_table("schedule") as batch:
        batch.drop_index("ix_schedule_account_id")
    op.drop_table("schedule")
    with op.batch_alter_table("team") as batch:
        batch.drop_index("ix_team_account_id")
    op.drop_table("team")
