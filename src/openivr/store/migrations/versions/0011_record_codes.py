"""Prompts recorded by phone: every prompt gets a record code (unique in its account, in the
order the prompts were made), each account a counter for the next one; sysprompt apps get the
four prompts the recorder says; *22 is the recording shortcode, so an app that had it moves to
its account's lowest free shortcode.

Revision ID: 0011
Revises: 0010
"""

import secrets
import string
from collections import defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ALNUM = string.ascii_lowercase + string.digits
_RECORDING_SHORTCODE = "*22"
_NEW_PROMPTS = {
    "record_code": "Record: prompt number",
    "record_review": "Record: keep or again",
    "record_saved": "Record: saved",
    "record_unknown": "Record: unknown number",
}


def _move_apps_off_the_recording_shortcode(conn: sa.Connection) -> None:
    holders = conn.execute(
        sa.text("SELECT app_id, account_id FROM voiceapp WHERE shortcode = :code"),
        {"code": _RECORDING_SHORTCODE},
    ).all()
    for app_id, account_id in holders:
        taken = set(
            conn.scalars(
                sa.text("SELECT shortcode FROM voiceapp WHERE account_id = :a"), {"a": account_id}
            ).all()
        )
        n = 21
        while f"*{n}" in taken or f"*{n}" == _RECORDING_SHORTCODE:
            n += 1
        conn.execute(
            sa.text("UPDATE voiceapp SET shortcode = :code WHERE app_id = :app"),
            {"code": f"*{n}", "app": app_id},
        )


def _add_recorder_prompts(conn: sa.Connection) -> None:
    apps = conn.execute(
        sa.text("SELECT app_id, account_id FROM voiceapp WHERE app_type = 'sysprompt'")
    ).all()
    now = datetime.now(UTC)
    for app_id, account_id in apps:
        have = set(
            conn.scalars(
                sa.text("SELECT key FROM prompt WHERE app_id = :app"), {"app": app_id}
            ).all()
        )
        for key, name in _NEW_PROMPTS.items():
            if key in have:
                continue
            conn.execute(
                sa.text(
                    "INSERT INTO prompt (prompt_id, account_id, app_id, prompt_type, key, name,"
                    " message_key, message_source, message_text, message_voice, file_name,"
                    " audio_length, size_bytes, created_at) VALUES (:id, :account, :app,"
                    " 'standard', :key, :name, '', '', '', '', '', 0, 0, :now)"
                ),
                {
                    "id": "PR" + "".join(secrets.choice(_ALNUM) for _ in range(10)),
                    "account": account_id,
                    "app": app_id,
                    "key": key,
                    "name": name,
                    "now": now,
                },
            )


def _number_prompts(conn: sa.Connection) -> None:
    rows = conn.execute(
        sa.text(
            "SELECT prompt_id, account_id FROM prompt ORDER BY account_id, created_at, prompt_id"
        )
    ).all()
    counts: dict[str, int] = defaultdict(int)
    for prompt_id, account_id in rows:
        counts[account_id] += 1
        conn.execute(
            sa.text("UPDATE prompt SET record_code = :code WHERE prompt_id = :id"),
            {"code": counts[account_id], "id": prompt_id},
        )
    for account_id, count in counts.items():
        conn.execute(
            sa.text("UPDATE account SET next_record_code = :next WHERE account_id = :a"),
            {"next": count + 1, "a": account_id},
        )


# The account table is changed by plain ALTERs only, never a batch copy: on SQLite dropping
# the old table would cascade into every table that refers to it. Nothing refers to prompt.


def upgrade() -> None:
    op.add_column(
        "account", sa.Column("next_record_code", sa.Integer(), nullable=False, server_default="1")
    )
    with op.batch_alter_table("prompt") as batch:
        batch.add_column(sa.Column("record_code", sa.Integer(), nullable=True))
    conn = op.get_bind()
    _move_apps_off_the_recording_shortcode(conn)
    _add_recorder_prompts(conn)
    _number_prompts(conn)
    with op.batch_alter_table("prompt") as batch:
        batch.alter_column("record_code", existing_type=sa.Integer(), nullable=False)
        batch.create_unique_constraint("uq_prompt_record_code", ["account_id", "record_code"])


def downgrade() -> None:
    keys = ", ".join(f"'{key}'" for key in _NEW_PROMPTS)
    op.execute(
        f"DELETE FROM prompt WHERE key IN ({keys}) AND prompt_type = 'standard'"
        " AND app_id IN (SELECT app_id FROM voiceapp WHERE app_type = 'sysprompt')"
    )
    with op.batch_alter_table("prompt") as batch:
        batch.drop_constraint("uq_prompt_record_code", type_="unique")
        batch.drop_column("record_code")
    op.drop_column("account", "next_record_code")
