"""SIP dialogs (RFC 3261 §12): the calls we answer, and the table of every dialog.

An `IncomingDialog` is the INVITE dialog of a call that reached us (we are its UAS): it is the
call's signalling (`CallSignalling`): it rings, answers and keeps its 2xx going until the ACK
(§13.3.1.4), refuses, hangs up, and sends REFER; it serves the caller's in-dialog requests (BYE,
re-INVITE/UPDATE offers, INFO keys, NOTIFYs about our REFER). Calls we place are dialogs too
(`uac.OutgoingCall`, an `OutgoingDialog`). The `DialogTable` keeps both kinds by Call-ID and
our tag; dialogs register and forget themselves there.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from openivr.sip.dtmf import parse_info_body
from openivr.sip.message import (
    Headers,
    SipRequest,
    SipResponse,
    contact_uri,
    new_branch,
    new_tag,
    response_to,
)
from openivr.sip.sdp import (
    LocalSession,
    MediaAgreement,
    NoCommonCodec,
    SdpError,
    SessionDescription,
    negotiate,
)
from openivr.sip.srtp import SrtpMode, SrtpRefused, agree, secure
from openivr.sip.transaction import (
    TIMEOUT,
    ClientTransaction,
    Clock,
    Retransmitter,
    ServerTransaction,
    Timer,
    TransactionTable,
)

if TYPE_CHECKING:
    from openivr.sip.call import HangupSide, MediaCall
    from openivr.sip.transport import Peer, Transports

log = logging.getLogger(__name__)

ALLOWED = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "UPDATE", "NOTIFY")
# Methods other SIP entities use that we know but do not serve: 405, not 501.
KNOWN_UNSUPPORTED = frozenset(
    ("REGISTER", "SUBSCRIBE", "NOTIFY", "MESSAGE", "REFER", "PRACK", "PUBLISH")
)

DialogKey = tuple[str, str]  # Call-ID and our tag


def not_served(request: SipRequest) -> SipResponse:
    """405 for a method we know but do not serve here, 501 for one we do not know."""
    status = 405 if request.method in KNOWN_UNSUPPORTED else 501
    return response_to(request, status, extra=[("Allow", ", ".join(ALLOWED))])


class OutgoingDialog(Protocol):
    """A dialog we started with our own INVITE (uac.OutgoingCall)."""

    @property
    def key(self) -> DialogKey:
        """Call-ID and our From tag."""

    def on_request(self, request: SipRequest, tx: ServerTransaction) -> None:
        """An in-dialog request from the far end."""

    def on_2xx(self, response: SipResponse) -> None:
        """A retransmitted 2xx to our INVITE (answer it with ACK again)."""


class DialogTable:
    """Every dialog in progress: the calls we answered and the calls we placed."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._incoming: dict[DialogKey, IncomingDialog] = {}
        self._outgoing: dict[DialogKey, OutgoingDialog] = {}

    def register(self, dialog: IncomingDialog | OutgoingDialog) -> None:
        """Keep a dialog until it forgets itself."""
        if isinstance(dialog, IncomingDialog):
            self._incoming[dialog.key] = dialog
        else:
            self._outgoing[dialog.key] = dialog

    def forget(self, dialog: IncomingDialog | OutgoingDialog, after: float = 0.0) -> None:
        """Drop a dialog, now or `after` seconds from now (a newer one under its key stays)."""
        if after > 0:
            self.clock.call_later(after, lambda: self.forget(dialog))
            return
        if isinstance(dialog, IncomingDialog):
            if self._incoming.get(dialog.key) is dialog:
                del self._incoming[dialog.key]
        elif self._outgoing.get(dialog.key) is dialog:
            del self._outgoing[dialog.key]

    def incoming(self, request: SipRequest) -> IncomingDialog | None:
        """The call we answered that an in-dialog request (or ACK) belongs to."""
        return self._incoming.get((request.call_id, request.to.tag or ""))

    def outgoing(self, call_id: str, local_tag: str) -> OutgoingDialog | None:
        """The call we placed with this Call-ID and our tag."""
        return self._outgoing.get((call_id, local_tag))

    def answering(self, invite_tx: ServerTransaction) -> IncomingDialog | None:
        """The call being set up by this INVITE transaction (a CANCEL looks for it)."""
        return next((d for d in self._incoming.values() if d.transaction is invite_tx), None)

    @property
    def calls_in_progress(self) -> int:
        """Calls we answered (or are routing) that have not ended."""
        return len(self._incoming)


@dataclass(frozen=True)
class UserAgentCore:
    """What dialogs need of the node: how to name ourselves and where transactions and dialogs
    are kept."""

    transports: Transports
    transactions: TransactionTable
    dialogs: DialogTable
    user_agent: str
    srtp: SrtpMode = "offer"  # when calls' media is SRTP (sip/srtp.py)


class IncomingDialog:
    """The INVITE dialog of a call we answer; it is the call's signalling."""

    def __init__(
        self,
        core: UserAgentCore,
        invite: SipRequest,
        transaction: ServerTransaction,
        peer: Peer,
        agreement: MediaAgreement | None,
    ) -> None:
        self.core = core
        self.invite = invite
        self.transaction = transaction
        self.peer = peer
        self.call_id = invite.call_id
        self.local_tag = new_tag()
        self.remote_tag = invite.from_.tag or ""
        self.agreement = agreement
        self.local_sdp: LocalSession | None = None
        self.call: MediaCall | None = None
        self.cancelled = False
        self.local_cseq = secrets.randbelow(2**16) + 1
        self.remote_target = invite.headers.get("Contact") or ""
        # Proxies that stay in the path (a load balancer) record-route; our in-dialog
        # requests carry their route set, in the order received (RFC 3261 §12.1.1).
        self.route_set = invite.headers.get_all("Record-Route")
        # Our 2xx to the INVITE (or a re-INVITE), resent until its ACK: CSeq and resender.
        self._pending_2xx: tuple[int, Retransmitter] | None = None
        self._ack_deadline: Timer | None = None
        self.bye: ClientTransaction | None = None
        # Set while a transfer waits for NOTIFYs about its REFER (refer.py).
        self._notify_sink: Callable[[SipRequest], None] | None = None
        core.dialogs.register(self)

    @property
    def key(self) -> DialogKey:
        """Call-ID and our To tag."""
        return (self.call_id, self.local_tag)

    @property
    def contact(self) -> str:
        """Our Contact in this dialog (sips: when the caller called a sips: URI)."""
        return self.core.transports.contact_for(
            self.peer, sips=self.invite.uri[:5].lower() == "sips:"
        )

    def _response(self, request: SipRequest, status: int, body: bytes = b"") -> SipResponse:
        extra: list[tuple[str, str]] = []
        if status < 300 and status > 100:
            extra.append(("Contact", self.contact))
        if body:
            extra.append(("Content-Type", "application/sdp"))
        if status == 200 and request.method in ("INVITE", "UPDATE"):
            extra += _session_timer_headers(request)
        extra.append(("Server", self.core.user_agent))
        return response_to(request, status, to_tag=self.local_tag, body=body, extra=extra)

    # CallSignalling -----------------------------------------------------------------------

    def send_ringing(self) -> None:
        """180 Ringing."""
        if not self.transaction.final_status:
            self.transaction.respond(self._response(self.invite, 180))

    def send_answer(self) -> None:
        """200 OK with the SDP answer, retransmitted until ACK."""
        if self.transaction.final_status or self.local_sdp is None:
            return
        if self.agreement is not None:
            body = self.local_sdp.answer(self.agreement)
        else:
            body = self.local_sdp.offer()
        response = self._response(self.invite, 200, body)
        self.transaction.respond(response)
        self._start_2xx(self.invite.cseq.number, response.serialise())

    def send_reject(self, status: int, reason: str) -> None:
        """A final error response to the INVITE."""
        if not self.transaction.final_status:
            response = response_to(
                self.invite,
                status,
                reason or None,
                to_tag=self.local_tag,
                extra=[("Server", self.core.user_agent)],
            )
            self.transaction.respond(response)
        self.core.dialogs.forget(self)

    def send_bye(self) -> None:
        """BYE to the caller (client transaction with retransmissions)."""
        self._stop_2xx()
        self.bye = self.send_request("BYE")
        self.core.dialogs.forget(self)

    def send_refer(self, target_uri: str) -> asyncio.Future[int]:
        """REFER the caller's side to `target_uri` (RFC 3515); the future holds its final
        status (408 when unanswered, 0 when the node stopped)."""
        tx = self.send_request(
            "REFER", [("Refer-To", f"<{target_uri}>"), ("Referred-By", self.contact)]
        )
        return tx.done

    def watch_notifies(self, sink: Callable[[SipRequest], None] | None) -> None:
        """Hand the NOTIFYs the caller's side sends (about our REFER) to `sink`; None stops."""
        self._notify_sink = sink

    def send_request(
        self,
        method: str,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> ClientTransaction:
        """Send an in-dialog request (BYE, REFER) to the caller; its final status follows."""
        self.local_cseq += 1
        branch = new_branch()
        headers = Headers()
        headers.add("Via", self.core.transports.via_for(self.peer, branch))
        headers.add("Max-Forwards", "70")
        headers.add("From", _with_tag(self.invite.headers.get("To") or "", self.local_tag))
        headers.add("To", self.invite.headers.get("From") or "")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self.local_cseq} {method}")
        for route in self.route_set:
            headers.add("Route", route)
        if method != "BYE":
            headers.add("Contact", self.contact)
        for name, value in extra or []:
            headers.add(name, value)
        headers.add("User-Agent", self.core.user_agent)
        target = contact_uri(self.remote_target) or self.invite.from_.uri
        request = SipRequest(headers, body, method=method, uri=target)
        tx = ClientTransaction(
            self.core.transactions, branch, request.serialise(), self.peer, method
        )
        tx.start()
        return tx

    # 2xx reliability (RFC 3261 §13.3.1.4) ---------------------------------------------------

    def _start_2xx(self, cseq: int, data: bytes) -> None:
        self._stop_2xx()
        resend = Retransmitter(self.peer, data, self.core.transactions.clock)
        resend.start()
        self._pending_2xx = (cseq, resend)
        self._ack_deadline = self.core.transactions.clock.call_later(TIMEOUT, self._no_ack)

    def _stop_2xx(self) -> None:
        if self._pending_2xx is not None:
            self._pending_2xx[1].stop()
        if self._ack_deadline is not None:
            self._ack_deadline.cancel()
        self._ack_deadline = None
        self._pending_2xx = None

    def _no_ack(self) -> None:
        log.info("no ACK for 200 OK on call %s; hanging up", self.call_id)
        self._stop_2xx()
        self.send_bye()
        if self.call is not None:
            self.call.finish("timeout", "no ACK")

    def resend_2xx(self) -> None:
        """A retransmitted INVITE after our 200: the 200 was lost, send it again."""
        if self._pending_2xx is not None:
            self.peer.send(self._pending_2xx[1].data)

    def on_ack(self, ack: SipRequest) -> None:
        """ACK for our 2xx: stop retransmitting; take a late SDP answer if there is one."""
        if self._pending_2xx is not None and ack.cseq.number == self._pending_2xx[0]:
            self._stop_2xx()
        if ack.body and self.agreement is None and self.call is not None:
            try:
                agreement = negotiate(SessionDescription.parse(ack.body))
            except SdpError:
                return
            self.agreement = agreement
            self.call.follow(agreement)

    # Ending ------------------------------------------------------------------------------

    def finish(self, by: HangupSide, reason: str) -> None:
        """The call ended by the caller side (BYE/CANCEL) or a timeout."""
        self._stop_2xx()
        self.core.dialogs.forget(self)
        if self.call is not None:
            self.call.finish(by, reason)

    def close(self) -> None:
        """The call is over: stop resending our 2xx and forget the dialog (and the call, which
        refers to its dialog too: refcounting frees both at once, no full collection needed)."""
        self._stop_2xx()
        self.core.dialogs.forget(self)
        self.call = None

    # Requests from the caller -----------------------------------------------------------------

    def on_request(self, request: SipRequest, tx: ServerTransaction) -> None:
        """An in-dialog request from the caller (OPTIONS is the server's)."""
        method = request.method
        if method == "BYE":
            tx.respond(self._response(request, 200))
            self.finish("caller", "bye")
        elif method in ("INVITE", "UPDATE"):
            self._on_offer(request, tx)
        elif method == "INFO":
            tx.respond(self._response(request, 200))
            key = parse_info_body(request.content_type, request.body)
            if key is not None and self.call is not None:
                self.call.receive_key(key, "info")
        elif method == "NOTIFY":
            tx.respond(self._response(request, 200))
            if self._notify_sink is not None:
                self._notify_sink(request)
        else:
            tx.respond(not_served(request))

    def _on_offer(self, request: SipRequest, tx: ServerTransaction) -> None:
        call = self.call
        if call is None or self.local_sdp is None or call.state != "answered":
            tx.respond(response_to(request, 491 if request.method == "INVITE" else 500))
            return
        body = b""
        if request.body:
            try:
                offered = negotiate(SessionDescription.parse(request.body))
            except NoCommonCodec as exc:
                tx.respond(response_to(request, 488, f"Not Acceptable Here ({exc})"[:120]))
                return
            # Keep our codec (under the payload type this offer gives it) while it is still
            # offered; else follow the offer to its codec, both ways.
            kept = next((pt for pt, codec in offered.audio_types if codec == call.codec), None)
            try:
                theirs = agree(
                    offered.profile, offered.srtp, self.core.srtp, self.peer.name == "TLS"
                )
            except SrtpRefused as exc:
                tx.respond(response_to(request, 488, f"Not Acceptable Here ({exc})"[:120]))
                return
            if (theirs is None) != (call.agreement.srtp is None):
                tx.respond(response_to(request, 488, "Not Acceptable Here (SRTP on or off)"))
                return
            agreement = replace(
                offered,
                codec=offered.codec if kept is None else call.codec,
                payload_type=offered.payload_type if kept is None else kept,
                srtp=theirs,
            )
            if theirs is not None and self.local_sdp.key is not None:
                if theirs != call.agreement.srtp:
                    secure(call.rtp_session, self.local_sdp.key, theirs)  # the far end re-keyed
            call.follow(agreement)
            self.agreement = agreement
            body = self.local_sdp.answer(agreement)
        elif request.method == "INVITE":
            body = self.local_sdp.answer(call.agreement)
        response = self._response(request, 200, body)
        tx.respond(response)
        if request.method == "INVITE":
            self._start_2xx(request.cseq.number, response.serialise())


def _with_tag(value: str, tag: str) -> str:
    return value if ";tag=" in value else f"{value};tag={tag}"


def _session_timer_headers(request: SipRequest) -> list[tuple[str, str]]:
    expires = request.headers.get("Session-Expires")
    if not expires:
        return []
    seconds = expires.split(";", 1)[0].strip()
    if not seconds.isdigit():
        return []
    supported = ",".join(request.headers.get_all("Supported")).lower()
    headers = [("Session-Expires", f"{seconds};refresher=uac")]
    if "timer" in supported:
        headers.append(("Require", "timer"))
    return headers
