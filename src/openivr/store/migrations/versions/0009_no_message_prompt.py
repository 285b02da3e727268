"""Every sysprompt app gets the standard prompt "No message" (said when a mailbox kept
nothing), so it can be listed and given a custom recording like the others.

Revision ID: 0009
Revises: 0008
"""

import secrets
import string
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ALNUM = string.ascii_lowercase + string.digits


def upgrade() -> None:
    conn = op.get_bind()
    apps = conn.execute(
        sa.text(
            "SELECT app_id, account_id FROM voiceapp WHERE app_type = 'sysprompt' AND app_id NOT IN"
            " (SELECT app_id FROM prompt WHERE key = 'no_message')"
        )
    ).all()
    if not apps:
        return
    prompt = sa.table(
        "prompt",
        sa.column("prompt_id", sa.String),
        sa.column("account_id", sa.String),
        sa.column("app_id", sa.String),
        sa.column("prompt_type", sa.String),
        sa.column("key", sa.String),
        sa.column("name", sa.String),
        sa.column("message_key", sa.String),
        sa.column("message_source", sa.String),
        sa.column("message_text", sa.Text),
        sa.column("message_voice", sa.String),
        sa.column("file_name", sa.String),
        sa.column("audio_length", sa.Float),
        sa.column("size_bytes", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        prompt,
        [
            {
                "prompt_id": "PR" + "".join(secrets.choice(_ALNUM) for _ in range(10)),
                "account_id": account_id,
                "app_id": app_id,
                "prompt_type": "standard",
                "key": "no_message",
                "name": "No message",
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
        ],
    )


def downgrade() -> None:
    op.execute(
        "DELETE FROM prompt WHERE key = 'no_message' AND prompt_type = 'standard'"
        " AND app_id IN (SELECT app_id FROM voiceapp WHERE app_type = 'sysprompt')"
    )
