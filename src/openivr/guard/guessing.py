"""Password guessing: failures counted per address and per user name, bans that grow.

How the two limits combine (see ARCHITECTURE.md, "Guessing"):

- An **address** (an IPv4 address, an IPv6 /64) with `failures` wrong passwords within
  `window` is banned: every attempt from it, for any user, is refused without checking the
  password until the ban ends. Addresses on `--trusted-networks` are never banned (a balancer
  would otherwise lock out everyone behind it).
- A **user name** with `failures` wrong passwords within `window`, from any addresses, is
  locked for the addresses that failed for it: while the lock lasts, an address that has a
  failure for that name since the lock's window began is refused; an address with none (the
  owner's phone, the owner's office) is still checked. So a distributed guesser gets at most
  one guess per address per lock, and the real owner is not locked out by somebody else's
  guesses. A failure during a lock counts too: `failures` more extend the lock.
- Each ban of the same key within `memory` of the previous one's end lasts twice as long
  (`ban_seconds`, doubling, at most `ban_max_seconds`).

Unknown user names are counted and locked exactly like known ones, so a lock tells nothing.

Counts and bans live in the database, shared by every node: one indexed read of the bans per
checked attempt (none while a ban is already known here), and per failure one transaction that
inserts the failure first (on SQLite it takes the write lock before reading, so it never has
to upgrade a stale read), counts the recent failures and, past the limit, writes the ban.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.guard.events import SecurityLog, log_event
from openivr.store.models import SecurityBan, SecurityEvent

log = logging.getLogger(__name__)

MAX_USERNAME = 200
# Bans and refused (user, address) pairs known on this node, kept while they hold.
_CACHE_LIMIT = 20_000


@dataclass(frozen=True)
class GuessPolicy:
    """The limits: how many failures in what window, how long bans last."""

    failures: int = 10
    window: float = 600.0
    ban_seconds: float = 600.0
    ban_max_seconds: float = 86400.0
    memory: float = 86400.0

    def __post_init__(self) -> None:
        if self.failures < 1:
            raise ValueError("auth_failures: must be at least 1")
        if self.window <= 0 or self.ban_seconds <= 0:
            raise ValueError("auth_window and auth_ban_seconds: must be more than 0")
        if self.ban_max_seconds < self.ban_seconds:
            raise ValueError("auth_ban_max_seconds: must be at least auth_ban_seconds")

    def ban_length(self, level: int) -> float:
        """Seconds the `level`-th ban in a row lasts."""
        return float(min(self.ban_seconds * 2 ** min(level - 1, 40), self.ban_max_seconds))


@dataclass(frozen=True)
class Attempt:
    """A password about to be checked: over which channel, from where, for which user name."""

    channel: str  # "sip" or "api"
    source: str  # as counted (guard.addresses.counted_source)
    username: str
    trusted: bool = False

    @classmethod
    def of(cls, channel: str, source: str, username: str, trusted: bool = False) -> Attempt:
        """An attempt with the user name cut to what is stored."""
        return cls(channel, source, username[:MAX_USERNAME], trusted)

    @property
    def address_key(self) -> str:
        """The ban key of the address."""
        return f"addr:{self.source}"

    @property
    def user_key(self) -> str:
        """The ban key of the user name on this channel."""
        return f"{self.channel}:{self.username}"


@dataclass(frozen=True)
class Ban:
    """A ban as stored."""

    key: str
    banned_at: datetime
    until: datetime
    level: int


@dataclass(frozen=True)
class Verdict:
    """Whether a password may be checked; if not, why and until when."""

    refused: str = ""  # "" (check it), "address_banned" or "user_locked"
    until: datetime | None = None
    address_ban: Ban | None = field(default=None, compare=False)
    user_ban: Ban | None = field(default=None, compare=False)

    def retry_after(self, now: datetime | None = None) -> int:
        """Whole seconds until the refusal ends (at least 1)."""
        if self.until is None:
            return 1
        left = (self.until - (now or datetime.now(UTC))).total_seconds()
        return max(1, math.ceil(left))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class GuessingGuard:
    """Decides whether a password may be checked, and records the ones that were wrong."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        events: SecurityLog,
        policy: GuessPolicy | None = None,
    ) -> None:
        self.sessions = sessions
        self.events = events
        self.policy = policy or GuessPolicy()
        # key -> until (epoch seconds) of bans known to hold; (user key, source) -> until.
        self._bans: dict[str, float] = {}
        self._pairs: dict[tuple[str, str], float] = {}

    # Checking --------------------------------------------------------------------------------

    def refused_here(self, attempt: Attempt) -> Verdict | None:
        """A refusal this node already knows of (no database read), else None."""
        now = time.time()
        if not attempt.trusted:
            until = self._bans.get(attempt.address_key)
            if until is not None and until > now:
                return Verdict("address_banned", datetime.fromtimestamp(until, UTC))
        until = self._pairs.get((attempt.user_key, attempt.source))
        if until is not None and until > now:
            return Verdict("user_locked", datetime.fromtimestamp(until, UTC))
        return None

    async def check(self, attempt: Attempt) -> Verdict:
        """Whether the attempt's password may be checked; a refusal is counted as an event."""
        verdict = self.refused_here(attempt)
        if verdict is None:
            verdict = await self._read(attempt)
        if verdict.refused:
            self.events.refused(verdict.refused, attempt.channel, attempt.source, attempt.username)
        return verdict

    async def _read(self, attempt: Attempt) -> Verdict:
        now = datetime.now(UTC)
        async with self.sessions() as db:
            rows = await db.scalars(
                select(SecurityBan).where(
                    SecurityBan.key.in_((attempt.address_key, attempt.user_key))
                )
            )
            bans = {
                row.key: Ban(row.key, _aware(row.banned_at), _aware(row.until), row.level)
                for row in rows
            }
            address, user = bans.get(attempt.address_key), bans.get(attempt.user_key)
            if address is not None and address.until > now and not attempt.trusted:
                self._remember(self._bans, attempt.address_key, address.until)
                return Verdict("address_banned", address.until, address, user)
            if user is not None and user.until > now:
                since = user.banned_at - timedelta(seconds=self.policy.window)
                failed_here = await db.scalar(
                    select(SecurityEvent.event_id)
                    .where(
                        SecurityEvent.channel == attempt.channel,
                        SecurityEvent.username == attempt.username,
                        SecurityEvent.at > since,
                        SecurityEvent.source == attempt.source,
                        SecurityEvent.kind == "failure",
                    )
                    .limit(1)
                )
                if failed_here is not None:
                    self._remember(self._pairs, (attempt.user_key, attempt.source), user.until)
                    return Verdict("user_locked", user.until, address, user)
        return Verdict("", None, address, user)

    # Recording -------------------------------------------------------------------------------

    async def failure(
        self,
        attempt: Attempt,
        verdict: Verdict,
        *,
        user_id: str | None = None,
        account_id: str | None = None,
    ) -> list[Ban]:
        """Record a wrong password; ban the address or lock the user name when it was one too
        many. The bans set, if any."""
        policy = self.policy
        now = datetime.now(UTC)
        window_start = now - timedelta(seconds=policy.window)
        since_address = max(
            window_start, verdict.address_ban.banned_at if verdict.address_ban else window_start
        )
        since_user = max(
            window_start, verdict.user_ban.banned_at if verdict.user_ban else window_start
        )
        self.events.count("failure", attempt.channel, "wrong_password")
        log_event(
            "failure",
            "wrong_password",
            attempt.channel,
            attempt.source,
            attempt.username,
            account_id,
            log_level=logging.INFO,
        )
        by_address = and_(SecurityEvent.source == attempt.source, SecurityEvent.at > since_address)
        by_user = and_(
            SecurityEvent.channel == attempt.channel,
            SecurityEvent.username == attempt.username,
            SecurityEvent.at > since_user,
        )
        set_bans: list[Ban] = []
        async with self.sessions() as db:
            db.add(self._event(now, "failure", "wrong_password", attempt, user_id, account_id, {}))
            await db.flush()  # the write first: see the module's docstring
            counts = (
                await db.execute(
                    select(
                        func.coalesce(func.sum(case((by_address, 1), else_=0)), 0),
                        func.coalesce(func.sum(case((by_user, 1), else_=0)), 0),
                    ).where(
                        SecurityEvent.kind == "failure",
                        SecurityEvent.at > min(since_address, since_user),
                        or_(
                            SecurityEvent.source == attempt.source,
                            and_(
                                SecurityEvent.channel == attempt.channel,
                                SecurityEvent.username == attempt.username,
                            ),
                        ),
                    )
                )
            ).one()
            from_address, for_user = int(counts[0]), int(counts[1])
            if from_address >= policy.failures and not attempt.trusted:
                set_bans.append(self._next_ban(attempt.address_key, verdict.address_ban, now))
            if for_user >= policy.failures:
                set_bans.append(self._next_ban(attempt.user_key, verdict.user_ban, now))
            for ban in set_bans:
                await self._store_ban(db, ban)
                reason = "address_banned" if ban.key.startswith("addr:") else "user_locked"
                failures = from_address if reason == "address_banned" else for_user
                detail = {
                    "until": ban.until.isoformat(),
                    "seconds": round((ban.until - now).total_seconds()),
                    "level": ban.level,
                    "failures": failures,
                }
                db.add(self._event(now, "ban", reason, attempt, user_id, account_id, detail))
            await db.commit()
        for ban in set_bans:
            reason = "address_banned" if ban.key.startswith("addr:") else "user_locked"
            self.events.count("ban", attempt.channel, reason)
            log_event(
                "ban",
                reason,
                attempt.channel,
                attempt.source,
                attempt.username,
                account_id,
                until=ban.until.strftime("%Y-%m-%dT%H:%M:%SZ"),
                ban_level=ban.level,
            )
            self._remember(self._bans, ban.key, ban.until)
        # The address that just failed for a locked user name is refused for it from now on.
        user_ban = next((b for b in set_bans if b.key == attempt.user_key), verdict.user_ban)
        if user_ban is not None and user_ban.until > now:
            self._remember(self._pairs, (attempt.user_key, attempt.source), user_ban.until)
        return set_bans

    def _next_ban(self, key: str, previous: Ban | None, now: datetime) -> Ban:
        level = 1
        if previous is not None and previous.until > now - timedelta(seconds=self.policy.memory):
            level = previous.level + 1
        until = now + timedelta(seconds=self.policy.ban_length(level))
        if previous is not None and previous.until > until:
            until = previous.until  # never shorten a ban another node set
        return Ban(key, now, until, level)

    @staticmethod
    async def _store_ban(db: AsyncSession, ban: Ban) -> None:
        values = {
            "key": ban.key,
            "banned_at": ban.banned_at,
            "until": ban.until,
            "level": ban.level,
        }
        changes = {"banned_at": ban.banned_at, "until": ban.until, "level": ban.level}
        if db.get_bind().dialect.name == "postgresql":
            pg = pg_insert(SecurityBan).values(**values)
            await db.execute(pg.on_conflict_do_update(index_elements=["key"], set_=changes))
        else:
            lite = sqlite_insert(SecurityBan).values(**values)
            await db.execute(lite.on_conflict_do_update(index_elements=["key"], set_=changes))

    def _event(
        self,
        at: datetime,
        kind: str,
        reason: str,
        attempt: Attempt,
        user_id: str | None,
        account_id: str | None,
        detail: dict[str, Any],
    ) -> SecurityEvent:
        return SecurityEvent(
            at=at,
            kind=kind,
            reason=reason,
            channel=attempt.channel,
            source=attempt.source,
            username=attempt.username,
            user_id=user_id,
            account_id=account_id,
            node=self.events.node,
            detail=detail,
        )

    @staticmethod
    def _remember(cache: dict[Any, float], key: Any, until: datetime) -> None:
        if len(cache) >= _CACHE_LIMIT:
            now = time.time()
            for old in [k for k, v in cache.items() if v <= now]:
                del cache[old]
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()  # only a cache: the database still holds every ban
        cache[key] = until.timestamp()
