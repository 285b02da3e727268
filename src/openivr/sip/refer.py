"""Blind transfer by REFER (RFC 3515): ask the caller's side to call the target itself."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from openivr.sip.call import Call
from openivr.sip.connect import Connector, TransferLeg, status_for
from openivr.sip.dialog import IncomingDialog
from openivr.sip.message import SipRequest

log = logging.getLogger(__name__)


def sipfrag_status(body: bytes) -> int | None:
    """The status code of a message/sipfrag body ('SIP/2.0 200 OK'), or None."""
    first = body.decode("utf-8", "replace").strip().split("\r\n", 1)[0].split("\n", 1)[0]
    parts = first.split(" ")
    if len(parts) >= 2 and parts[0].upper() == "SIP/2.0" and parts[1].isdigit():
        code = int(parts[1])
        return code if 100 <= code <= 699 else None
    return None


async def refer(call: Call, leg: TransferLeg, timeout: float) -> TransferLeg:
    """Send REFER to the caller and follow its NOTIFYs; hang up when the transfer succeeded."""
    dialog = call.signalling
    if not isinstance(dialog, IncomingDialog) or call.state != "answered":
        log.warning("transfer by REFER needs an answered SIP call; %s is not", call.call_id)
        return Connector._done(leg, "rejected")
    notifies: asyncio.Queue[SipRequest] = asyncio.Queue()
    dialog.watch_notifies(notifies.put_nowait)
    try:
        return await _follow(call, dialog, leg, notifies, timeout)
    finally:
        dialog.watch_notifies(None)


async def _follow(
    call: Call,
    dialog: IncomingDialog,
    leg: TransferLeg,
    notifies: asyncio.Queue[SipRequest],
    timeout: float,
) -> TransferLeg:
    tx = dialog.send_request(
        "REFER",
        [("Refer-To", f"<{leg.uri}>"), ("Referred-By", dialog.contact)],
    )
    code = await tx.done
    if not 200 <= code < 300:
        log.info("REFER to %s refused by the caller's side: %s", leg.uri, code)
        return Connector._done(leg, "rejected" if code else "unreachable", code)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    ended = asyncio.ensure_future(call.wait_ended())
    try:
        while True:
            getter = asyncio.ensure_future(notifies.get())
            done, _ = await asyncio.wait(
                {getter, ended},
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if getter not in done:
                getter.cancel()
                if ended in done:
                    # The caller's side left before telling us: it most likely went through.
                    leg.ended_by = "caller"
                    return Connector._done(leg, "answered")
                return Connector._done(leg, "no_answer", 408)
            notify = getter.result()
            event = (notify.headers.get("Event") or "").split(";", 1)[0].strip().lower()
            if event and event != "refer":
                continue
            status = sipfrag_status(notify.body)
            if status is None or status < 200:
                continue
            if status < 300:
                leg.status, leg.sip_code = "answered", status
                leg.answered_at = datetime.now(UTC)
                await call.hangup()  # our part is over (RFC 5589 §6.1)
                leg.ended_at = datetime.now(UTC)
                return leg
            log.info("transfer by REFER to %s failed: %s", leg.uri, status)
            return Connector._done(leg, status_for(status), status)
    finally:
        ended.cancel()
