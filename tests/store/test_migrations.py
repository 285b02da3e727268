"""Migrations bring existing data along, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from openivr.store.accounts import create_account
from openivr.store.db import _alembic_config, make_engine, make_sessionmaker, migrate
from openivr.store.models import Prompt, VoiceApp
from openivr.store.voiceapps import take_record_codes

RECORDER_PROMPTS = ("record_code", "record_review", "record_saved", "record_unknown")

NOW = datetime(2026, 1, 1, tzinfo=UTC)

# Each test builds the schema it starts from.
pytestmark = pytest.mark.empty_database


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
        ("record_code", "Record: prompt number"),
        ("record_review", "Record: keep or again"),
        ("record_saved", "Record: saved"),
        ("record_unknown", "Record: unknown number"),
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
    # 0011 went down and up again too: its prompts come back with it.
    assert after == before | {"no_message", *RECORDER_PROMPTS}


def test_0011_numbers_every_prompt_and_moves_apps_off_the_recording_shortcode(
    database_url: str,
) -> None:
    async def scenario() -> tuple[dict[str, str], list[tuple[str, int]], list[int]]:
        engine = make_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade_to("0010"))  # type: ignore[arg-type]
                await conn.execute(
                    text(
                        "INSERT INTO account (account_id, name, language, timezone,"
                        " caller_id_mode, config_revision, created_at)"
                        " VALUES ('412345678', 'Old', 'en', 'UTC', 'caller', 0, :now)"
                    ),
                    {"now": NOW},
                )
                for app_id, kind, code in (
                    ("VAmain000001", "ivr", "*21"),
                    ("VAsales00001", "ivr", "*22"),  # made before *22 was kept for recording
                    ("VAsys0000001", "sysprompt", "*23"),
                ):
                    await conn.execute(
                        text(
                            "INSERT INTO voiceapp (app_id, account_id, app_type, name,"
                            " shortcode, config, version, created_at, updated_at) VALUES"
                            " (:app, '412345678', :kind, :app, :code, '{}', 1, :now, :now)"
                        ),
                        {"app": app_id, "kind": kind, "code": code, "now": NOW},
                    )
                for n, (prompt_id, app_id) in enumerate(
                    (("PRwelcome001", "VAmain000001"), ("PRhours00001", "VAsales00001"))
                ):
                    await conn.execute(
                        text(
                            "INSERT INTO prompt (prompt_id, account_id, app_id, prompt_type,"
                            " key, name, message_key, message_source, message_text,"
                            " message_voice, file_name, audio_length, size_bytes, created_at)"
                            " VALUES (:id, '412345678', :app, 'custom', '', :id, '', '', '',"
                            " '', '', 0, 0, :at)"
                        ),
                        {"id": prompt_id, "app": app_id, "at": NOW + timedelta(seconds=n)},
                    )
            await migrate(engine)
            async with engine.connect() as conn:
                codes = {
                    str(a): str(c)
                    for a, c in (await conn.execute(text("SELECT app_id, shortcode FROM voiceapp")))
                }
                numbered = [
                    (str(p), int(c))
                    for p, c in await conn.execute(
                        text(
                            "SELECT prompt_id, record_code FROM prompt"
                            " WHERE account_id = '412345678' ORDER BY record_code"
                        )
                    )
                ]
            async with make_sessionmaker(engine)() as db:
                fresh = list(await take_record_codes(db, "412345678", 2))
                await db.commit()
            return codes, numbered, fresh
        finally:
            await engine.dispose()

    codes, numbered, fresh = asyncio.run(scenario())
    assert codes == {"VAmain000001": "*21", "VAsales00001": "*24", "VAsys0000001": "*23"}
    # The oldest prompts first; the sysprompt's new prompts were made by the migration.
    assert numbered[:2] == [("PRwelcome001", 1), ("PRhours00001", 2)]
    assert [code for _, code in numbered] == list(range(1, len(numbered) + 1))
    assert len(numbered) == 2 + len(RECORDER_PROMPTS)
    # The next prompt of the account gets the next code, never one handed out before.
    assert fresh == [len(numbered) + 1, len(numbered) + 2]


def test_accounts_made_before_0012_record_no_calls(database_url: str) -> None:
    async def run() -> tuple[str, str, str]:
        engine = make_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade_to("0011"))  # type: ignore[arg-type]
                await conn.execute(
                    text(
                        "INSERT INTO account (account_id, name, language, timezone,"
                        " caller_id_mode, config_revision, created_at)"
                        " VALUES ('412345679', 'Old', 'en', 'UTC', 'caller', 0, :now)"
                    ),
                    {"now": NOW},
                )
                await conn.execute(
                    text(
                        "INSERT INTO phonenumber (phnum, account_id, connect_to_type, created_at)"
                        " VALUES ('+46812345678', '412345679', '', :now)"
                    ),
                    {"now": NOW},
                )
            await migrate(engine)
            async with engine.connect() as conn:
                mode = await conn.scalar(text("SELECT call_recording FROM account"))
                number = await conn.scalar(text("SELECT record_calls FROM phonenumber"))
                rows = await conn.scalar(text("SELECT count(*) FROM call_recording"))
            return str(mode), str(number), str(rows)
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == ("off", "no", "0")
