"""Calls the node places on its own (a callback's first leg): rung where a transfer would ring
the same target, and once answered a `MediaCall` like a caller's, so prompts play on it and a
transfer bridges it to another party.

The answered call's signalling is our INVITE dialog (`PlacedSignalling`): hanging up sends BYE,
the far end's BYE ends the call, its re-offers (hold) and INFO keys are followed as a caller's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from openivr.sip.call import MediaCall
from openivr.sip.connect import Connector, apply_agreement, open_leg_media
from openivr.sip.forks import Forks
from openivr.sip.message import SipRequest
from openivr.sip.sdp import SdpError
from openivr.sip.srtp import SrtpRefused
from openivr.sip.transfer import Ending, TransferLeg, TransferTarget, leg_target
from openivr.sip.uac import OutgoingCall

log = logging.getLogger(__name__)


class PlacedSignalling:
    """The SIP side of a call we placed and that answered (`CallSignalling`)."""

    def __init__(self, outgoing: OutgoingCall) -> None:
        self.outgoing = outgoing

    def send_ringing(self) -> None:
        """Nothing to say: it was their phone that rang."""

    def send_answer(self) -> None:
        """Nothing to say: they answered us."""

    def send_bye(self) -> None:
        """Hang up (BYE)."""
        self.outgoing.bye()

    def send_reject(self, status: int, reason: str) -> None:
        """Stop ringing (CANCEL); a placed call is only handed on once answered."""
        self.outgoing.cancel()

    def send_refer(self, target_uri: str) -> asyncio.Future[int]:
        """Not done on calls we placed (their party is bridged instead): 0, as if stopped."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        future.set_result(0)
        return future

    def watch_notifies(self, sink: Callable[[SipRequest], None] | None) -> None:
        """No REFER, so no NOTIFYs."""


async def place_call(
    connector: Connector,
    target: TransferTarget,
    caller_id: str,
    until: Ending,
    on_end: Callable[[MediaCall], None],
    *,
    ring_time: float | None = None,
) -> tuple[TransferLeg, MediaCall | None]:
    """Ring `target` as a transfer would (all of a user's phones at once, redirects, the
    trunk's digest) showing `caller_id`; the leg and, once answered, the call (None when it
    was not answered, or `until` ended first)."""
    leg = TransferLeg(leg_target(target.kind, target.value), "", "unreachable", started_at=_now())
    try:
        ring_targets = await connector.ring_targets(target)
    except (OSError, ValueError) as exc:
        log.warning("call to %s: cannot resolve: %s", leg.target, exc)
        return leg.finish("unreachable"), None
    if ring_targets is None:
        log.warning("call to %s needs a SIP trunk but none is configured", leg.target)
        return leg.finish("no_trunk"), None
    if not ring_targets:
        return leg.finish("unreachable"), None
    leg.uri = ring_targets[0].uri
    try:
        session, local = await open_leg_media(connector.server, "PCMU", ring_targets)
    except OSError as exc:
        log.warning("call to %s: no RTP port: %s", leg.target, exc)
        return leg.finish("unreachable"), None
    forks = Forks(connector, leg, ring_targets, caller_id, "PCMU", local)
    call: MediaCall | None = None
    try:
        await forks.start()
        winner = await forks.ring(until, ring_time or connector.timeout)
        if winner is None or winner.answer is None:
            return leg, None
        fork = forks.forks[winner]
        try:
            agreement = forks.agreed(fork, winner.answer.body)
        except (SdpError, SrtpRefused) as exc:
            log.warning("call to %s: unusable SDP answer: %s", winner.uri, exc)
            winner.bye()
            return leg.finish("rejected", 488), None
        apply_agreement(session, agreement, local)
        placed = call = MediaCall(
            call_id=winner.call_id,
            caller=caller_id,
            dialed=winner.uri,
            agreement=agreement,
            session=session,
            clock=connector.server.clock,
            remote_sip=winner.peer.addr,
            transport=winner.peer.name,
            on_end=on_end,
        )
        placed.signalling = PlacedSignalling(winner)

        def reoffer(request: SipRequest) -> bytes:
            # Hold, resume, a new address: follow it as a caller's re-INVITE is followed.
            if request.body:
                try:
                    changed = forks.agreed(fork, request.body)
                    apply_agreement(session, changed, local)
                    placed.agreement = changed
                except (SdpError, SrtpRefused):
                    pass  # keep what the call runs on
            return local.answer(placed.agreement)

        winner.on_offer = reoffer
        winner.on_bye = lambda: placed.finish("caller", "bye")
        winner.on_key = lambda key: placed.receive_key(key, "info")
        leg.answered(winner.answer.status)
        leg.media = "SRTP" if agreement.srtp is not None else "RTP"
        await placed.answer()  # our side of it: its audio runs on the media clock from now on
        if fork.bye.is_set():  # they hung up as soon as they answered
            placed.finish("caller", "bye")
        return leg, placed
    finally:
        forks.close()
        if call is None:
            session.close()


def _now() -> datetime:
    return datetime.now(UTC)
