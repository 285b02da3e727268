"""An account's configuration loaded once for a call or a simulation (the engine's CallConfig)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.engine.config import (
    AppConfig,
    ConfigError,
    PromptRef,
    StaticConfig,
    TeamConfig,
    UserConfig,
)
from openivr.engine.hours import ScheduleConfig
from openivr.store.fresh import FreshReader
from openivr.store.models import Account, Prompt, Schedule, Team, User, VoiceApp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredMessage:
    """A prompt's custom message as the store keeps it."""

    key: str
    source: str
    text: str
    voice: str


@dataclass
class AccountSnapshot:
    """The engine's view of one account plus what it takes to voice its prompts."""

    account_id: str
    config: StaticConfig
    account: Account | None = None
    apps: dict[str, VoiceApp] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    prompt_names: dict[str, str] = field(default_factory=dict)
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)

    def app_row(self, app_id: str) -> VoiceApp | None:
        """The stored app behind an engine AppConfig."""
        return self.apps.get(app_id)


# Counts voicemails per mailbox (the engine's "mailbox full" rule).
MessageCounter = Callable[[AsyncSession, list[str]], Awaitable[dict[str, int]]]


async def count_messages(db: AsyncSession, app_ids: list[str]) -> dict[str, int]:
    """Messages held per mailbox."""
    from openivr.store.voicemail import Voicemail

    rows = await db.execute(
        select(Voicemail.app_id, func.count())
        .where(Voicemail.app_id.in_(app_ids))
        .group_by(Voicemail.app_id)
    )
    return {app_id: int(n) for app_id, n in rows.all()}


def _view(app: VoiceApp, sip_domain: str | None) -> dict[str, object]:
    view: dict[str, object] = {
        "app_id": app.app_id,
        "app_type": app.app_type,
        "name": app.name,
        **app.config,
    }
    if sip_domain:
        view["sip_address"] = f"{app.app_id}@{sip_domain}"
    return view


async def load_snapshot(
    db: AsyncSession,
    account_id: str,
    counter: MessageCounter | None = count_messages,
    sip_domain: str | None = None,
) -> AccountSnapshot:
    """Read the account and its apps, users, prompts, teams, schedules and mailbox counts; with
    `sip_domain` each app knows its own sip_address (a call to it enters the app)."""
    account = await db.get(Account, account_id)
    apps = (await db.scalars(select(VoiceApp).where(VoiceApp.account_id == account_id))).all()
    users = (await db.scalars(select(User).where(User.account_id == account_id))).all()
    prompts = (await db.scalars(select(Prompt).where(Prompt.account_id == account_id))).all()
    teams = (await db.scalars(select(Team).where(Team.account_id == account_id))).all()
    schedules = (await db.scalars(select(Schedule).where(Schedule.account_id == account_id))).all()
    engine_apps = [AppConfig.from_api(_view(a, sip_domain), account_id=account_id) for a in apps]
    engine_teams: list[TeamConfig] = []
    for team in teams:
        try:
            engine_teams.append(
                TeamConfig.from_api(
                    {"team_id": team.team_id, "name": team.name, **team.config},
                    account_id=account_id,
                )
            )
        except ConfigError as exc:  # saved through the API, so never expected; calls go on
            log.warning("team %s cannot be used: %s", team.team_id, exc)
    engine_schedules: list[ScheduleConfig] = []
    for schedule in schedules:
        try:
            engine_schedules.append(
                ScheduleConfig.from_api(
                    {"schedule_id": schedule.schedule_id, "name": schedule.name, **schedule.config},
                    account_id=account_id,
                    default_timezone=account.timezone if account else "UTC",
                )
            )
        except ConfigError as exc:
            log.warning("schedule %s cannot be used: %s", schedule.schedule_id, exc)
    engine_users = [
        UserConfig(
            user_id=u.user_id,
            account_id=account_id,
            name=f"{u.fname} {u.lname}".strip() or u.email,
            extension=u.extension,
            sip_uri=u.sip_uri,
            phnum=u.phnum,
        )
        for u in users
    ]
    refs = []
    messages: dict[str, StoredMessage] = {}
    for p in prompts:
        if p.message_key:
            messages[p.prompt_id] = StoredMessage(
                p.message_key, p.message_source, p.message_text, p.message_voice
            )
        refs.append(
            PromptRef(
                prompt_id=p.prompt_id,
                app_id=p.app_id,
                account_id=account_id,
                name=p.name,
                key=p.key or None,
                text=p.message_text or None,
                has_audio=bool(p.message_key) or p.prompt_type == "standard",
                record_code=p.record_code,
            )
        )
    mailboxes = [a.app_id for a in apps if a.app_type == "mailbox"]
    counts = await counter(db, mailboxes) if counter and mailboxes else {}
    return AccountSnapshot(
        account_id=account_id,
        config=StaticConfig(
            engine_apps,
            engine_users,
            refs,
            counts,
            engine_teams,
            engine_schedules,
            {t.team_id: t.last_answered for t in teams if t.last_answered},
        ),
        account=account,
        apps={a.app_id: a for a in apps},
        users={u.user_id: u for u in users},
        prompt_names={p.prompt_id: p.name for p in prompts},
        messages=messages,
        teams={t.team_id: t for t in teams},
    )


@dataclass(frozen=True)
class _Check:
    """The one query that tells whether a snapshot still holds, and refreshes what changes
    without a revision (mailbox counts, who answered each rotating team last)."""

    sql: str
    params: dict[str, str]
    mailboxes: list[str]
    rotating: list[str]

    @classmethod
    def of(cls, snapshot: AccountSnapshot) -> _Check:
        mailboxes = [a.app_id for a in snapshot.apps.values() if a.app_type == "mailbox"]
        rotating = [
            t.team_id for t in snapshot.teams.values() if t.config.get("strategy") == "rotate"
        ]
        columns = ["a.config_revision"]
        params = {"account_id": snapshot.account_id}
        for i, app_id in enumerate(mailboxes):
            columns.append(f"(SELECT count(*) FROM voicemail WHERE app_id = :m{i})")
            params[f"m{i}"] = app_id
        for i, team_id in enumerate(rotating):
            columns.append(f"(SELECT last_answered FROM team WHERE team_id = :t{i})")
            params[f"t{i}"] = team_id
        sql = f"SELECT {', '.join(columns)} FROM account AS a WHERE a.account_id = :account_id"
        return cls(sql, params, mailboxes, rotating)


class SnapshotCache:
    """Snapshots reused while the account's config revision stays the same (one node's view).

    A call then costs one small query (the revision, the mailbox counts, and who answered each
    rotating team last) instead of loading every app, user, prompt, team and schedule; with a
    `reader` (store/fresh.py) that query is a fresh read (inline on SQLite), without a session.
    Any node that changes the configuration bumps the revision in the same transaction
    (store/revision.py), so no call runs on a stale menu.
    """

    def __init__(
        self, size: int = 1000, sip_domain: str | None = None, reader: FreshReader | None = None
    ):
        self.size = size
        self.sip_domain = sip_domain
        self.reader = reader
        self._entries: OrderedDict[str, tuple[AccountSnapshot, _Check]] = OrderedDict()

    async def get(self, db: AsyncSession, account_id: str) -> AccountSnapshot:
        """The account's snapshot with fresh mailbox counts (`db` only loads it when the one
        held is missing or stale, or checks it when there is no reader)."""
        return await self._held(account_id, db) or await self._load(db, account_id)

    async def current(
        self, sessions: async_sessionmaker[AsyncSession], account_id: str
    ) -> AccountSnapshot:
        """`get`, opening a session only when one is needed: with a reader, a held snapshot
        that still holds needs none."""
        if self.reader is not None:
            held = await self._held(account_id, None)
            if held is not None:
                return held
            async with sessions() as db:
                return await self._load(db, account_id)
        async with sessions() as db:
            return await self.get(db, account_id)

    async def _held(self, account_id: str, db: AsyncSession | None) -> AccountSnapshot | None:
        """The held snapshot, its counts refreshed, when one read (the reader's, or else
        through `db`) says it still holds."""
        entry = self._entries.get(account_id)
        if entry is None:
            return None
        hit, check = entry
        if self.reader is not None:
            row = await self.reader.first(check.sql, check.params)
        else:
            assert db is not None
            found = (await db.execute(text(check.sql), check.params)).first()
            row = tuple(found) if found is not None else None
        if row is None or hit.account is None or hit.account.config_revision != row[0]:
            return None
        self._entries.move_to_end(account_id)
        held = row[1 : 1 + len(check.mailboxes)]
        hit.config.message_counts = {m: int(n) for m, n in zip(check.mailboxes, held, strict=True)}
        last = row[1 + len(check.mailboxes) :]
        for team_id, member in zip(check.rotating, last, strict=True):
            if member:
                hit.config.last_answered_by[team_id] = str(member)
        return hit

    async def _load(self, db: AsyncSession, account_id: str) -> AccountSnapshot:
        snapshot = await load_snapshot(db, account_id, sip_domain=self.sip_domain)
        self._entries[account_id] = (snapshot, _Check.of(snapshot))
        self._entries.move_to_end(account_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return snapshot
