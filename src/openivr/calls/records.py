"""Call records: what each driver learned, merged with the SIP layer's timing, then stored.

A call's row is written when it starts (outcome `in_progress`, no end time: the call log shows
calls in progress on every node) and completed when it ends; both writes are batched. Each start
and end is also one INFO log line.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.sip.call import SipCallRecord
from openivr.store.models import CallRecord

log = logging.getLogger(__name__)
FLUSH_DELAY = 0.2  # seconds a finished call's record may wait to be written with others
IN_PROGRESS = "in_progress"  # the outcome of a call that has not ended yet
# What a call's end writes into the row its start wrote.
_END_COLUMNS = (
    "apps",
    "keys",
    "outcome",
    "detail",
    "transfers",
    "sip_status",
    "ended_by",
    "started_at",
    "answered_at",
    "ended_at",
)


@dataclass
class CallNotes:
    """What the call flow learned about a call while it ran."""

    account_id: str | None = None
    apps: list[str] = field(default_factory=list)
    keys: str = ""
    outcome: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    # While a driver runs the call the record waits for it (a message is stored after the
    # caller's BYE, and the record must say so); `ended` holds the SIP layer's account meanwhile.
    held: bool = False
    ended: SipCallRecord | None = None
    row: dict[str, Any] | None = None  # the row written when the call started
    ended_by: str = ""  # who ended it, when the SIP layer's side does not say (a callback)


def _security(record: SipCallRecord) -> dict[str, str]:
    """How the caller's call travelled: its SIP transport and whether its audio was SRTP."""
    if not record.transport:
        return {}
    return {"signalling": record.transport, "media": "SRTP" if record.srtp else "RTP"}


_TABLE: Table = CallRecord.__table__  # type: ignore[assignment]
# Rows are written with Core statements: a batch of 1,000 costs ~20 ms of the loop's time,
# against ~150 ms through the ORM's unit of work (SQLite, measured while writing this).
_INSERT = insert(_TABLE)
_END = (
    update(_TABLE)
    .where(
        _TABLE.c.call_id == bindparam("_call_id"),
        _TABLE.c.node == bindparam("_node"),
        _TABLE.c.ended_at.is_(None),
    )
    .values({name: bindparam(name) for name in _END_COLUMNS})
)


class CallLog:
    """Collects notes per Call-ID; writes a row when a call starts and completes it when the
    SIP layer says the call ended."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], node: str | None = None):
        self.sessions = sessions
        self.node = node or socket.gethostname()
        self.notes: dict[str, CallNotes] = {}
        self._pending: list[dict[str, Any]] = []  # rows to insert
        self._ends: list[dict[str, Any]] = []  # ends of calls whose start row went out already
        self._unstored: set[str] = set()  # calls whose start row could not be written
        self._flusher: asyncio.Task[None] | None = None
        # Told of every record before it is stored (the node's metrics).
        self.observers: list[Callable[[CallRecord], None]] = []

    def notes_for(self, call_id: str) -> CallNotes:
        """The notes of a live call (created on first use)."""
        return self.notes.setdefault(call_id, CallNotes())

    def hold(self, call_id: str) -> CallNotes:
        """The notes of a call a driver runs: its record waits for `release`."""
        notes = self.notes_for(call_id)
        notes.held = True
        return notes

    def release(self, call_id: str) -> None:
        """The driver is done: write the record if the SIP layer has ended the call."""
        notes = self.notes.get(call_id)
        if notes is None:
            return
        notes.held = False
        if notes.ended is not None:
            self.call_ended(notes.ended)

    def call_started(
        self, call_id: str, caller: str, dialed: str, account_id: str, app_id: str
    ) -> None:
        """A routed call begins: log it and write its row as in progress (within FLUSH_DELAY)."""
        notes = self.notes_for(call_id)
        notes.account_id = account_id
        row: dict[str, Any] = {
            "call_id": call_id,
            "account_id": account_id,
            "from_number": caller,
            "to_number": dialed,
            "node": self.node,
            "apps": [app_id] if app_id else [],
            "keys": "",
            "outcome": IN_PROGRESS,
            "detail": {},
            "transfers": [],
            "sip_status": 0,
            "ended_by": "",
            "started_at": datetime.now(UTC),
            "answered_at": None,
            "ended_at": None,
        }
        notes.row = row
        log.info(
            "call %s started: from %s to %s, app %s",
            call_id,
            caller or "?",
            dialed or "?",
            app_id or "-",
            extra={"call_id": call_id},
        )
        self._write(row)

    def call_ended(self, record: SipCallRecord) -> None:
        """SipServer's on_call_end hook: the record is written within FLUSH_DELAY, with others
        (once the call's driver is done with it)."""
        held = self.notes.get(record.call_id)
        if held is not None and held.held:
            held.ended = record
            return
        notes = self.notes.pop(record.call_id, CallNotes())
        if not notes.outcome:
            notes.outcome = "rejected" if record.answered_at is None else "hangup"
            if record.ended_by == "caller":
                notes.outcome = "caller_hangup" if record.answered_at else "cancelled"
        end: dict[str, Any] = {
            "call_id": record.call_id,
            "account_id": notes.account_id,
            "from_number": record.caller,
            "to_number": record.dialed,
            "node": self.node,
            "apps": notes.apps,
            "keys": notes.keys[:500],
            "outcome": notes.outcome,
            "detail": notes.detail | {"reason": record.reason} | _security(record),
            "transfers": notes.transfers,
            "sip_status": record.status,
            "ended_by": notes.ended_by or record.ended_by,
            "started_at": record.started_at,
            "answered_at": record.answered_at,
            "ended_at": record.ended_at,
        }
        seconds = (record.ended_at - record.started_at).total_seconds()
        log.info(
            "call %s ended: %s, from %s to %s, app %s, ended by %s after %.1f s",
            record.call_id,
            notes.outcome,
            record.caller or "?",
            record.dialed or "?",
            notes.apps[-1] if notes.apps else "-",
            notes.ended_by or record.ended_by,
            seconds,
            extra={"call_id": record.call_id},
        )
        started = notes.row
        if started is not None and any(row is started for row in self._pending):
            started.update(end)  # not written yet: one insert carries the whole call
        elif started is None or record.call_id in self._unstored:
            self._unstored.discard(record.call_id)
            self._write(end)
        else:
            # Its start is being or was written: the end updates that row.
            self._ends.append(
                {name: end[name] for name in _END_COLUMNS}
                | {"_call_id": record.call_id, "_node": self.node}
            )
            self._write(None)
        if self.observers:
            seen = CallRecord(**end)
            for observe in self.observers:
                observe(seen)

    def _write(self, row: dict[str, Any] | None) -> None:
        if row is not None:
            self._pending.append(row)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        # Records of calls starting and ending close together share one transaction.
        while self._pending or self._ends:
            await asyncio.sleep(FLUSH_DELAY)
            rows, self._pending = self._pending, []
            ends, self._ends = self._ends, []
            try:
                async with self.sessions() as db:
                    if rows:
                        await db.execute(_INSERT, rows)
                    if ends:
                        await db.execute(_END, ends)
                    await db.commit()
            except Exception:  # a lost record must not take the node down; it is logged
                log.exception("could not store %d call records", len(rows) + len(ends))
                # Calls still up whose start was lost get a whole row when they end.
                self._unstored.update(row["call_id"] for row in rows if row["ended_at"] is None)

    async def close_interrupted(self) -> int:
        """At start-up: calls this node left in progress (it was killed) are ended as
        `interrupted`, so the call log does not show them in progress for ever."""
        now = datetime.now(UTC)
        async with self.sessions() as db:
            result = await db.execute(
                update(_TABLE)
                .where(_TABLE.c.node == self.node, _TABLE.c.ended_at.is_(None))
                .values(outcome="interrupted", ended_at=now, ended_by="us")
            )
            await db.commit()
        count = int(getattr(result, "rowcount", 0) or 0)
        if count:
            log.warning("%d calls were in progress when this node last stopped: interrupted", count)
        return count

    async def drain(self) -> None:
        """Write the records still waiting (at shutdown)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.gather(self._flusher, return_exceptions=True)
