"""Call records: what each driver learned, merged with the SIP layer's timing, then stored."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.sip.call import CallRecord as SipCallRecord
from openivr.store.models import CallRecord

log = logging.getLogger(__name__)


@dataclass
class CallNotes:
    """What the call flow learned about a call while it ran."""

    account_id: str | None = None
    apps: list[str] = field(default_factory=list)
    keys: str = ""
    outcome: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    transfers: list[dict[str, Any]] = field(default_factory=list)


class CallLog:
    """Collects notes per Call-ID and writes one row when the SIP layer says the call ended."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], node: str | None = None):
        self.sessions = sessions
        self.node = node or socket.gethostname()
        self.notes: dict[str, CallNotes] = {}
        self._writes: set[asyncio.Task[None]] = set()

    def notes_for(self, call_id: str) -> CallNotes:
        """The notes of a live call (created on first use)."""
        return self.notes.setdefault(call_id, CallNotes())

    def call_ended(self, record: SipCallRecord) -> None:
        """SipServer's on_call_end hook: write the record in the background."""
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
            detail=notes.detail | {"reason": record.reason},
            transfers=notes.transfers,
            sip_status=record.status,
            ended_by=record.ended_by,
            started_at=record.started_at,
            answered_at=record.answered_at,
            ended_at=record.ended_at,
        )
        task = asyncio.get_running_loop().create_task(self._write(row))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, row: CallRecord) -> None:
        try:
            async with self.sessions() as db:
                db.add(row)
                await db.commit()
        except Exception:  # a lost record must not take the node down; it is logged
            log.exception("could not store the call record of %s", row.call_id)

    async def drain(self) -> None:
        """Wait for records still being written (at shutdown)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
