"""Callbacks on this node: ring call1; once it answers, ring call2 with ringback to call1 and
bridge them; a call2 that does not answer leaves call1 with "unavailable", then the end.

Both legs ring the way a transfer rings the same target (`TransferService.route`, the transfers'
rule); the first is placed by `sip/placed.py` and then stands where a caller stands, so the
second is an ordinary bridged transfer of it (`TransferService`, always bridged). A session
holds two of `--max-calls` (one per leg) from the moment it is accepted until it ends. Its
record (call_id = the session id) has both legs in `transfers`, each with `leg` call1 or call2.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from openivr.apps.callbacks.schema import CallbackPlan, CallbackRefused, Party
from openivr.calls.driver import TransferRequest
from openivr.calls.records import CallLog
from openivr.engine.config import system_prompt
from openivr.sip.call import HungUp, MediaCall, PlaybackFinished, SipCallRecord
from openivr.sip.placed import place_call
from openivr.sip.transfer import EndedBy, TransferLeg, leg_target
from openivr.store.models import Account

if TYPE_CHECKING:
    from openivr.calls.layer import TransferService
    from openivr.context import ServerContext
    from openivr.sip.server import SipServer
    from openivr.store.snapshot import SnapshotCache

log = logging.getLogger(__name__)

LEGS = 2  # slots of --max-calls a callback holds
# The longest "unavailable" may play before the first party is hung up on regardless.
PROMPT_SECONDS = 30.0


class CallbackSession:
    """One callback in progress; the node ends it through `end` (when it stops)."""

    def __init__(self, plan: CallbackPlan) -> None:
        self.plan = plan
        self.call: MediaCall | None = None  # the first party, once they answered
        self._ended = asyncio.Event()

    @property
    def ended(self) -> bool:
        """Whether the node has ended the session."""
        return self._ended.is_set()

    async def wait_ended(self) -> None:
        """Return once the node has ended the session."""
        await self._ended.wait()

    def end(self) -> None:
        """End it now: ringing stops, an answered first party is hung up on (a bridge with it
        then ends both)."""
        self._ended.set()
        call = self.call
        if call is not None and not call.ended:
            if call.signalling is not None:
                call.signalling.send_bye()
            call.finish("us", "node stopping")


class CallbackService:
    """Places the callbacks this node takes and writes their records."""

    def __init__(
        self,
        ctx: ServerContext,
        calls: CallLog,
        transfer: TransferService,
        server: SipServer,
        snapshots: SnapshotCache,
    ) -> None:
        self.ctx = ctx
        self.calls = calls
        self.transfer = transfer
        self.server = server
        self.snapshots = snapshots
        self.sessions: dict[str, CallbackSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def place(self, plan: CallbackPlan) -> None:
        """Start a callback (it goes on in the background); CallbackRefused when the node is
        stopping or its --max-calls cannot hold both legs."""
        server = self.server
        if server.draining:
            raise CallbackRefused("this node is stopping and places no new calls; retry elsewhere")
        if not server.reserve(LEGS):
            raise CallbackRefused(
                f"this node carries its --max-calls ({server.config.max_calls}) calls now; a "
                f"callback needs {LEGS} (one per leg); retry shortly"
            )
        session = CallbackSession(plan)
        self.sessions[plan.session_id] = session
        self.calls.call_started(
            plan.session_id, plan.first.given, plan.second.given, plan.account_id, ""
        )
        task = asyncio.get_running_loop().create_task(self._run(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def end_all(self, wait: float = 5.0) -> None:
        """End every callback now (the node stops) and give their records `wait` seconds to be
        handed to the call log."""
        for session in list(self.sessions.values()):
            session.end()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=wait)

    async def _run(self, session: CallbackSession) -> None:
        plan = session.plan
        started = datetime.now(UTC)
        notes = self.calls.notes_for(plan.session_id)
        notes.account_id = plan.account_id
        notes.detail = {
            "kind": "callback",
            "app_id": plan.app_id,
            "requested_by": plan.requested_by,
            "show_1": plan.show_1,
            "show_2": plan.show_2,
        }
        first: TransferLeg | None = None
        call: MediaCall | None = None
        ended_by, reason, detail = "us", "", ""
        try:
            first, call, detail = await self._first_leg(session)
            if call is None:
                notes.outcome = f"call1_{first.status}"
                reason = f"call1 {_said(first.to_dict() | {'detail': detail})}"
                return
            session.call = call
            if session.ended:  # the node stopped while call1 answered: no second leg
                notes.outcome = "call1_cancelled"
                reason = "the node stopped"
                return
            await self._record_if_wanted(plan, call, notes.detail)
            second = await self._second_leg(plan, call)
            notes.transfers.append(_leg_entry("call2", plan.second, second))
            if second.get("status") == "answered":
                notes.outcome = "connected"
                ended_by = "call2" if second.get("ended_by") == "target" else _side(call)
                reason = f"{ended_by} hung up" if ended_by != "us" else "the node stopped"
            elif call.ended and _side(call) == "call1":
                notes.outcome = "call1_hangup"  # they did not wait for call2 to answer
                reason = "call1 hung up while call2 rang"
                ended_by = "call1"
            else:
                notes.outcome = f"call2_{second.get('status')}"
                reason = f"call2 {_said(second)}"
                if not call.ended:
                    await self._unavailable(plan, call)
                ended_by = _side(call)
        except Exception:  # a bug must not leave a leg up or the record unwritten
            log.exception("callback %s failed", plan.session_id)
            notes.outcome = notes.outcome or "failed"
            reason = reason or "an unexpected error; it is logged"
        finally:
            if call is not None and not call.ended:
                await call.hangup()
            if first is not None:
                self._close_first(first, call, ended_by)
                leg1 = first.to_dict() | ({"detail": detail} if detail else {})
                notes.transfers.insert(0, _leg_entry("call1", plan.first, leg1))
            self.sessions.pop(plan.session_id, None)
            self.server.release(LEGS)
            notes.ended_by = ended_by
            self.calls.call_ended(
                SipCallRecord(
                    call_id=plan.session_id,
                    caller=plan.first.given,
                    dialed=plan.second.given,
                    started_at=started,
                    answered_at=first.answered_at if first is not None else None,
                    ended_at=datetime.now(UTC),
                    ended_by="us",
                    status=first.sip_code if first is not None else 0,
                    reason=reason,
                )
            )

    async def _first_leg(
        self, session: CallbackSession
    ) -> tuple[TransferLeg, MediaCall | None, str]:
        """Ring call1 where a transfer would ring it: the leg, the answered call, and why it
        could not be rung at all ("" when it was)."""
        plan = session.plan
        target, status, detail = await self.transfer.route(plan.first.kind, plan.first.value)
        if target is None:
            leg = TransferLeg(leg_target(plan.first.kind, plan.first.value), "", status)
            leg.started_at = datetime.now(UTC)
            return leg.finish(status), None, detail
        leg, call = await place_call(
            self.transfer.connector, target, plan.show_1, session, lambda call: None
        )
        return leg, call, ""

    async def _record_if_wanted(
        self, plan: CallbackPlan, call: MediaCall, detail: dict[str, Any]
    ) -> None:
        """An outbound call of the account: recorded on the first party's leg (from their
        answer; the bridge to call2 passes through it) when `call_recording` says so."""
        recordings = self.ctx.recordings
        if recordings is None:
            return
        try:
            async with self.ctx.sessions() as db:
                account = await db.get(Account, plan.account_id)
            users = (plan.requested_by, plan.first.value, plan.second.value)
            if await recordings.wanted(account, "outbound", users=users):
                detail["recording_id"] = recordings.record(
                    call.rtp_session,
                    call_id=plan.session_id,
                    account_id=plan.account_id,
                    until=call.wait_ended(),
                    user_id=plan.requested_by,
                )
        except Exception:  # the callback goes on unrecorded
            log.exception("callback %s: could not start its recording", plan.session_id)

    async def _second_leg(self, plan: CallbackPlan, call: MediaCall) -> dict[str, Any]:
        """Ring call2 as a bridged transfer of the first party (ringback meanwhile)."""
        party = plan.second
        request = TransferRequest(
            party.value,
            party.kind,
            party.value if party.kind == "user" else None,
            plan.show_2,
            bridge=True,
        )
        return await self.transfer(call, request, lambda who: None)

    async def _unavailable(self, plan: CallbackPlan, call: MediaCall) -> None:
        """The account's "unavailable" message to the first party, to its end (or theirs)."""
        try:
            snapshot = await self.snapshots.current(self.ctx.sessions, plan.account_id)
            found = system_prompt(snapshot.config, plan.account_id, "unavailable")
            sound = (
                await self.ctx.sounds.resolve_async(snapshot, *found) if found is not None else None
            )
        except Exception:  # the call still ends well without the message
            log.exception("callback %s: 'unavailable' could not be loaded", plan.session_id)
            sound = None
        if sound is None or call.ended:
            return
        call.pending_events()  # what came before is not the prompt's end
        call.play(sound.audio)
        try:
            async with asyncio.timeout(PROMPT_SECONDS):
                while True:
                    event = await call.next_event()
                    if isinstance(event, PlaybackFinished | HungUp):
                        return
        except TimeoutError:
            return

    @staticmethod
    def _close_first(leg: TransferLeg, call: MediaCall | None, ended_by: str) -> None:
        if call is None:
            return
        stats = call.stats
        leg.packets_to_target = stats.packets_sent
        leg.packets_from_target = stats.packets_received
        by: EndedBy = "target" if ended_by == "call1" else ""
        leg.hung_up(by)


def _side(call: MediaCall) -> str:
    """Who ended a callback whose first party's call is over: call1 when they hung up."""
    event = call.hangup_event
    return "call1" if event is not None and event.by == "caller" else "us"


def _leg_entry(name: str, party: Party, leg: dict[str, Any]) -> dict[str, Any]:
    """A leg as the record shows it: which leg, who was asked for, how it went."""
    entry: dict[str, Any] = {"leg": name, "party": party.given, **leg}
    if party.kind == "user":
        entry["user_id"] = party.value
    return entry


def _said(data: dict[str, Any]) -> str:
    """How a leg failed, in words for the record's reason."""
    status, code = str(data.get("status", "")), int(data.get("sip_code") or 0)
    words = {
        "busy": "was busy",
        "no_answer": "did not answer",
        "rejected": "refused the call",
        "unreachable": "could not be reached",
        "no_trunk": "needs a SIP trunk this node has not",
        "cancelled": "was not rung to the end (the node stopped)",
    }.get(status, status)
    detail = data.get("detail") or ""
    return f"{words}{f' ({code})' if code else ''}{f': {detail}' if detail else ''}"


__all__ = ["CallbackRefused", "CallbackService", "LEGS"]
