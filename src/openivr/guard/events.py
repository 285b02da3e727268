"""Security events: one log line each in a stable format, counters for metrics, and the
refusals made during a ban, which are summed rather than written one by one.

A log line reads `security event=<kind> reason=<reason> channel=<sip|api> source=<address>
user=<name or -> account=<id or -> [count=<n>] [until=<time>]`; the same fields travel as the
record's attributes, so `--log-format json` writes them as fields.

A banned scanner may send thousands of attempts a second: each refusal costs a counter here,
never a database write or a log line. Refusals are summed per (reason, channel, source, user),
logged when the first one of a period arrives and written as one `refusal` event with its
count when the period ends.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.store.models import SecurityBan, SecurityEvent, User

log = logging.getLogger("openivr.security")

# Refusals are summed over this long before one event row and one log line carry them.
REFUSAL_PERIOD = 60.0
# Beyond this many distinct (reason, channel, source, user) in one period, refusals are only
# counted (a scanner rotating user names must not grow memory without end).
MAX_PENDING = 5000


@dataclass
class _Pending:
    count: int
    first: datetime


def log_event(
    kind: str,
    reason: str,
    channel: str,
    source: str,
    user: str = "",
    account: str | None = None,
    *,
    log_level: int = logging.WARNING,
    **fields: object,
) -> None:
    """One security log line in the stable format, its fields also on the record."""
    extra_text = "".join(f" {k}={v}" for k, v in fields.items())
    log.log(
        log_level,
        "security event=%s reason=%s channel=%s source=%s user=%s account=%s%s",
        kind,
        reason,
        channel,
        source,
        user or "-",
        account or "-",
        extra_text,
        extra={
            "event": kind,
            "reason": reason,
            "channel": channel,
            "source": source,
            "user": user or None,
            "account": account,
            **fields,
        },
    )


class SecurityLog:
    """Counts every security event for metrics, sums refusals, writes them and prunes old
    events and bans."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        node: str,
        *,
        retention_days: float = 30.0,
        ban_memory: float = 86400.0,
    ) -> None:
        self.sessions = sessions
        self.node = node
        self.retention = timedelta(days=retention_days)
        self.ban_memory = timedelta(seconds=ban_memory)
        # (kind, channel, reason) -> events on this node since it started; read by /metrics.
        self.counts: dict[tuple[str, str, str], int] = {}
        self._pending: dict[tuple[str, str, str, str], _Pending] = {}
        self._floods: dict[tuple[str, str], _Pending] = {}
        self.dropped = 0  # refusals counted but not itemised (too many distinct keys)

    def count(self, kind: str, channel: str, reason: str, n: int = 1) -> None:
        """Add to the node's counter of one kind of event."""
        key = (kind, channel, reason)
        self.counts[key] = self.counts.get(key, 0) + n

    def refused(self, reason: str, channel: str, source: str, username: str) -> None:
        """An attempt refused without checking its password: counted now, summed for the log
        and the database."""
        self.count("refusal", channel, reason)
        key = (reason, channel, source, username)
        pending = self._pending.get(key)
        if pending is not None:
            pending.count += 1
            return
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self._pending[key] = _Pending(1, datetime.now(UTC))
        # The first refusal of a period is logged at once; the period's total follows.
        log_event("refusal", reason, channel, source, username, log_level=logging.INFO)

    def flooded(self, channel: str, source: str) -> None:
        """A request dropped for going over its source's rate: counted, logged once a period
        per source with the period's total after."""
        self.count("flood", channel, "rate_limited")
        pending = self._floods.get((channel, source))
        if pending is not None:
            pending.count += 1
            return
        if len(self._floods) >= MAX_PENDING:
            self.dropped += 1
            return
        self._floods[(channel, source)] = _Pending(1, datetime.now(UTC))
        log_event("flood", "rate_limited", channel, source)

    async def flush(self) -> None:
        """Write the refusals summed so far as one event each (with the user's account when the
        name is a known user's) and log the totals."""
        pending, self._pending = self._pending, {}
        floods, self._floods = self._floods, {}
        dropped, self.dropped = self.dropped, 0
        if dropped:
            log.warning("security: %d more refusals from too many sources to list", dropped)
        # Floods concern no account (nobody was authenticated): logged, not stored.
        for (channel, source), item in floods.items():
            if item.count > 1:
                log_event("flood", "rate_limited", channel, source, count=item.count)
        if not pending:
            return
        async with self.sessions() as db:
            owners = await _owners(db, [(c, u) for (_r, c, _s, u) in pending])
            for (reason, channel, source, username), item in pending.items():
                user_id, account_id = owners.get((channel, username), (None, None))
                if item.count > 1:
                    log_event(
                        "refusal", reason, channel, source, username, account_id, count=item.count
                    )
                db.add(
                    SecurityEvent(
                        at=item.first,
                        kind="refusal",
                        reason=reason,
                        channel=channel,
                        source=source,
                        username=username,
                        user_id=user_id,
                        account_id=account_id,
                        node=self.node,
                        detail={"count": item.count},
                    )
                )
            await db.commit()

    async def prune(self, now: datetime | None = None) -> int:
        """Delete events older than the retention and bans long over; how many events went."""
        now = now or datetime.now(UTC)
        async with self.sessions() as db:
            result = await db.execute(
                delete(SecurityEvent).where(SecurityEvent.at < now - self.retention)
            )
            await db.execute(delete(SecurityBan).where(SecurityBan.until < now - self.ban_memory))
            await db.commit()
        return int(getattr(result, "rowcount", 0) or 0)

    async def run(self, prune_every: float = 3600.0) -> None:
        """Flush refusals every period and prune every `prune_every` seconds, until cancelled."""
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        try:
            while True:
                if loop.time() >= next_prune:
                    try:
                        gone = await self.prune()
                        if gone:
                            log.info("security: pruned %d events past their retention", gone)
                    except Exception:
                        log.exception("pruning security events failed")
                    next_prune = loop.time() + prune_every
                await asyncio.sleep(REFUSAL_PERIOD)
                await self._flush_logged()
        finally:
            await asyncio.shield(self._flush_logged())

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception:
            log.exception("writing security events failed")


async def _owners(
    db: AsyncSession, names: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, str]]:
    """(channel, user name) -> (user id, account id) for the names that are known users."""
    sip = {u for c, u in names if c == "sip" and u}
    api = {u for c, u in names if c == "api" and u}
    out: dict[tuple[str, str], tuple[str, str]] = {}
    if sip:
        rows = await db.execute(
            select(User.user_id, User.account_id).where(User.user_id.in_(sorted(sip)[:500]))
        )
        out.update({("sip", uid): (uid, acc) for uid, acc in rows.all()})
    if api:
        found = await db.execute(
            select(User.email, User.user_id, User.account_id).where(
                User.email.in_(sorted(api)[:500])
            )
        )
        out.update({("api", email): (uid, acc) for email, uid, acc in found.all()})
    return out
