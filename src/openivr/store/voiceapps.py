"""Voice apps and their prompts in the database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.apps.voiceapps.schema import AccountRefs
from openivr.engine.vocabulary import RECORDING_SHORTCODE, STANDARD_PROMPTS
from openivr.store import ids
from openivr.store.models import Account, Prompt, Schedule, Team, User, VoiceApp, utcnow


async def next_shortcode(db: AsyncSession, account_id: str) -> str:
    """The lowest free dial code *21, *23, ... of the account (*22 records prompts)."""
    taken = set(
        (
            await db.scalars(select(VoiceApp.shortcode).where(VoiceApp.account_id == account_id))
        ).all()
    )
    taken.add(RECORDING_SHORTCODE)
    n = 21
    while f"*{n}" in taken:
        n += 1
    return f"*{n}"


async def take_record_codes(db: AsyncSession, account_id: str, count: int) -> range:
    """`count` record codes for new prompts of the account, never handed out before.

    One UPDATE of the account's counter: it holds the account's row (PostgreSQL) or the
    database (SQLite) until the transaction ends, so concurrent creates never share a code.
    """
    end = (
        await db.execute(
            update(Account)
            .where(Account.account_id == account_id)
            .values(next_record_code=Account.next_record_code + count)
            .returning(Account.next_record_code)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one()
    return range(end - count, end)


async def create_app(
    db: AsyncSession, account_id: str, app_type: str, name: str, config: dict[str, Any]
) -> VoiceApp:
    """Insert an app with a fresh id and shortcode and its standard prompts (no commit)."""
    app = VoiceApp(
        app_id=ids.app_id(),
        account_id=account_id,
        app_type=app_type,
        name=name,
        shortcode=await next_shortcode(db, account_id),
        config=config,
        version=1,
    )
    db.add(app)
    await db.flush()
    standard = STANDARD_PROMPTS[app_type]
    codes = await take_record_codes(db, account_id, len(standard))
    for std, code in zip(standard, codes, strict=True):
        db.add(
            Prompt(
                prompt_id=ids.prompt_id(),
                account_id=account_id,
                app_id=app.app_id,
                prompt_type="standard",
                key=std.key,
                name=std.name,
                record_code=code,
            )
        )
    await db.flush()
    return app


async def account_refs(db: AsyncSession, account_id: str) -> AccountRefs:
    """The users, apps and prompts of an account that settings may point to."""
    users = set((await db.scalars(select(User.user_id).where(User.account_id == account_id))).all())
    apps = {
        row.app_id: row.app_type
        for row in (
            await db.execute(
                select(VoiceApp.app_id, VoiceApp.app_type).where(VoiceApp.account_id == account_id)
            )
        ).all()
    }
    prompts = set(
        (await db.scalars(select(Prompt.prompt_id).where(Prompt.account_id == account_id))).all()
    )
    teams = set((await db.scalars(select(Team.team_id).where(Team.account_id == account_id))).all())
    schedules = set(
        (
            await db.scalars(select(Schedule.schedule_id).where(Schedule.account_id == account_id))
        ).all()
    )
    return AccountRefs(users=users, apps=apps, prompts=prompts, teams=teams, schedules=schedules)


async def account_apps(db: AsyncSession, account_id: str) -> Sequence[VoiceApp]:
    """All apps of an account, oldest first."""
    return (
        await db.scalars(
            select(VoiceApp)
            .where(VoiceApp.account_id == account_id)
            .order_by(VoiceApp.created_at, VoiceApp.app_id)
        )
    ).all()


def touch(app: VoiceApp) -> None:
    """Mark an app changed: new version for ETags."""
    app.version += 1
    app.updated_at = utcnow()
