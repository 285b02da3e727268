"""Blind transfer by REFER (RFC 3515): ask the caller's side to call the target itself."""

from __future__ import annotations

import asyncio
import logging

from openivr.sip.call import CallSignalling, MediaCall
from openivr.sip.message import SipRequest
from openivr.sip.transfer import Interrupted, ReplyWait, TransferLeg, status_for

log = logging.getLogger(__name__)


def sipfrag_status(body: bytes) -> int | None:
    """The status code of a message/sipfrag body ('SIP/2.0 200 OK'), or None."""
    first = body.decode("utf-8", "replace").strip().split("\r\n", 1)[0].split("\n", 1)[0]
    parts = first.split(" ")
    if len(parts) >= 2 and parts[0].upper() == "SIP/2.0" and parts[1].isdigit():
        code = int(parts[1])
        return code if 100 <= code <= 699 else None
    return None


async def refer(call: MediaCall, leg: TransferLeg, timeout: float) -> TransferLeg:
    """Send REFER to the caller and follow its NOTIFYs; hang up when the transfer succeeded."""
    signalling = call.signalling
    if signalling is None or call.state != "answered":
        log.warning("transfer by REFER needs an answered SIP call; %s is not", call.call_id)
        return leg.finish("rejected")
    notifies: asyncio.Queue[SipRequest] = asyncio.Queue()
    signalling.watch_notifies(notifies.put_nowait)
    try:
        return await _follow(call, signalling, leg, notifies, timeout)
    finally:
        signalling.watch_notifies(None)


async def _follow(
    call: MediaCall,
    signalling: CallSignalling,
    leg: TransferLeg,
    notifies: asyncio.Queue[SipRequest],
    timeout: float,
) -> TransferLeg:
    code = await signalling.send_refer(leg.uri)
    if not 200 <= code < 300:
        log.info("REFER to %s refused by the caller's side: %s", leg.uri, code)
        return leg.finish("rejected" if code else "unreachable", code)
    async with ReplyWait(call, timeout) as wait:
        while True:
            notify = await wait.next(notifies)
            if notify is Interrupted.CALLER_LEFT:
                # The caller's side left before telling us: it most likely went through.
                return leg.finish("answered", by="caller")
            if notify is Interrupted.TIME_UP:
                return leg.finish("no_answer", 408)
            event = (notify.headers.get("Event") or "").split(";", 1)[0].strip().lower()
            if event and event != "refer":
                continue
            status = sipfrag_status(notify.body)
            if status is None or status < 200:
                continue
            if status < 300:
                leg.answered(status)
                await call.hangup()  # our part is over (RFC 5589 §6.1)
                return leg.hung_up()
            log.info("transfer by REFER to %s failed: %s", leg.uri, status)
            return leg.finish(status_for(status), status)
