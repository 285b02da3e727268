"""Migrations bring existing data along, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from openivr.store.accounts import create_account
from openivr.store.db import _alembic_config, make_engine, make_sessionmaker, migrate
from openivr.store.models import Prompt, VoiceApp

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _upgrade_to(revision: str) -> object:
    def run(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), revision)

    return run


def test_existing_system_prompt_apps_get_the_closed_and_all_busy_prompts(
    database_url: str,
) -> None:
    async def scenario() -> list[tuple[str, str]]:
        engine = make_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade_to("0007"))  # type: ignore[arg-type]
                await conn.execute(
                    text(
                        "INSERT INTO account (account_id, name, language, timezone,"
                        " caller_id_mode, config_revision, created_at)"
                        " VALUES ('412345678', 'Old', 'en', 'UTC', 'caller', 0, :now)"
                    ),
                    {"now": NOW},
                )
                await conn.execute(
                    text(
                        "INSERT INTO voiceapp (app_id, account_id, app_type, name, shortcode,"
                        " config, version, created_at, updated_at) VALUES ('VAsys0000001',"
                        " '412345678', 'sysprompt', 'System Prompt', '*23', '{}', 1, :now, :now)"
                    ),
                    {"now": NOW},
                )
            await migrate(engine)
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT key, name FROM prompt WHERE app_id = 'VAsys0000001'"
                        " AND prompt_type = 'standard' ORDER BY key"
                    )
                )
                return [(str(k), str(n)) for k, n in rows.all()]
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) == [
        ("all_busy", "All busy"),
        ("closed", "Closed"),
        ("no_message", "No message"),
    ]


def test_sysprompt_apps_made_before_0009_get_the_no_message_prompt(database_url: str) -> None:
    async def run() -> tuple[set[str], set[str]]:
        engine = make_engine(database_url)
        try:
            await migrate(engine)
            created = await create_account(
                make_sessionmaker(engine), "old@example.com", "old-secret-1", None
            )

            def down(connection: Connection) -> None:
                command.downgrade(_alembic_config(connection), "0008")

            async with engine.begin() as conn:
                await conn.run_sync(down)

            async def keys() -> set[str]:
                async with make_sessionmaker(engine)() as db:
                    rows = await db.scalars(
                        select(Prompt.key)
                        .join(VoiceApp, VoiceApp.app_id == Prompt.app_id)
                        .where(
                            VoiceApp.account_id == created.account_id,
                            VoiceApp.app_type == "sysprompt",
                        )
                    )
                    return set(rows.all())

            before = await keys()
            await migrate(engine)
            return before, await keys()
        finally:
            await engine.dispose()

    before, after = asyncio.run(run())
    assert "no_message" not in before  # an account as it was before 0009
    assert after == before | {"no_message"}
