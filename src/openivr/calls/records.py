"""Call records: what each driver learned, merged with the SIP layer's timing, then stored."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.sip.call import SipCallRecord
from openivr.store.models import CallRecord

log = logging.getLogger(__name__)
FLUSH_DELAY = 0.2  # seconds a finished call's record may wait to be written with others


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


def _security(record: SipCallRecord) -> dict[str, str]:
    """How the caller's call travelled: its SIP transport and whether its audio was SRTP."""
    if not record.transport:
        return {}
    return {"signalling": record.transport, "media": "SRTP" if record.srtp else "RTP"}


class CallLog:
    """Collects notes per Call-ID and writes one row when the SIP layer says the call ended."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], node: str | None = None):
        self.sessions = sessions
        self.node = node or socket.gethostname()
        self.notes: dict[str, CallNotes] = {}
        self._pending: list[CallRecord] = []
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
        row = CallRecord(
            call_id=record.call_id,
            account_id=notes.account_id,
            from_number=record.caller,
            to_number=record.dialed,
            node=self.node,
            apps=notes.apps,
            keys=notes.keys[:500],
            outcome=notes.outcome,
            detail=notes.detail | {"reason": record.reason} | _security(record),
            transfers=notes.transfers,
            sip_status=record.status,
            ended_by=record.ended_by,
            started_at=record.started_at,
            answered_at=record.answered_at,
            ended_at=record.ended_at,
        )
        for observe in self.observers:
            observe(row)
        self._pending.append(row)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        # Records of calls ending close together share one transaction.
        while self._pending:
            await asyncio.sleep(FLUSH_DELAY)
            rows, self._pending = self._pending, []
            try:
                async with self.sessions() as db:
                    db.add_all(rows)
                    await db.commit()
            except Exception:  # a lost record must not take the node down; it is logged
                log.exception("could not store %d call records", len(rows))

    async def drain(self) -> None:
        """Write the records still waiting (at shutdown)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.gather(self._flusher, return_exceptions=True)
