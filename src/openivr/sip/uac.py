"""Calls we place (UAC): INVITE with digest retry, CANCEL, ACK, BYE, and their dialog."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from openivr.sip.digest import Challenge, DigestError
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
from openivr.sip.transaction import TIMEOUT, ClientTransaction, InviteClientTransaction

if TYPE_CHECKING:
    from openivr.sip.dialog import DialogKey, UserAgentCore
    from openivr.sip.transaction import ServerTransaction
    from openivr.sip.transport import Peer

log = logging.getLogger(__name__)

# calling → early (a provisional answer) → confirmed (2xx) → ended; or calling/early → ended.
OutgoingCallState = Literal["calling", "early", "confirmed", "ended"]

# What the owner of an outgoing call hears about it: a response, or None when timer B fired
# (no response at all: the far end is unreachable).
ResponseListener = Callable[["OutgoingCall", SipResponse | None], None]


class OutgoingCall:
    """One call we place: INVITE (with digest retry), CANCEL, ACK, BYE and in-dialog requests."""

    def __init__(
        self,
        core: UserAgentCore,
        uri: str,
        peer: Peer,
        *,
        caller_id: str,
        from_host: str,
        sdp: bytes,
        listener: ResponseListener,
        route: list[str] | None = None,
    ) -> None:
        self.core = core
        self.uri = uri
        self.peer = peer  # UDP from our listening socket, or our TCP connection to the target
        self.call_id = f"{secrets.token_hex(12)}@openivr"
        self.local_tag = new_tag()
        self.cseq = secrets.randbelow(2**15) + 1
        self.sdp = sdp
        self.caller_id = caller_id
        self.from_header = f'"{caller_id}" <sip:{caller_id}@{from_host}>;tag={self.local_tag}'
        self.to_header = f"<{uri}>"
        self.listener = listener
        self.state: OutgoingCallState = "calling"
        self.provisional = False
        self.responded = False
        self.answer: SipResponse | None = None
        self.remote_tag = ""
        self.remote_target = uri
        # A pre-loaded route (a phone's Path) until a 2xx gives the dialog its own.
        self.route_set: list[str] = list(route or [])
        self.cancelled = False
        self.authenticated = False
        self.on_bye: Callable[[], None] | None = None
        self.on_key: Callable[[str], None] | None = None
        self.on_offer: Callable[[SipRequest], bytes] | None = None
        self._invite: InviteClientTransaction | None = None
        self._ack: bytes | None = None

    @property
    def key(self) -> DialogKey:
        """How the dialog table finds this dialog: Call-ID and our tag."""
        return (self.call_id, self.local_tag)

    @property
    def contact(self) -> str:
        """Our Contact in this dialog (sips: when we call a sips: URI)."""
        return self.core.transports.contact_for(self.peer, sips=self.uri[:5].lower() == "sips:")

    def _via(self, branch: str) -> str:
        return self.core.transports.via_for(self.peer, branch)

    def send_invite(self, auth: tuple[str, str] | None = None) -> None:
        """Send the INVITE (again, with an Authorization header, when `auth` is given)."""
        branch = new_branch()
        headers = Headers()
        headers.add("Via", self._via(branch))
        headers.add("Max-Forwards", "70")
        headers.add("From", self.from_header)
        headers.add("To", self.to_header)
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self.cseq} INVITE")
        for hop in self.route_set:
            headers.add("Route", hop)
        headers.add("Contact", self.contact)
        headers.add("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE")
        if auth is not None:
            headers.add(*auth)
        headers.add("User-Agent", self.core.user_agent)
        headers.add("Content-Type", "application/sdp")
        request = SipRequest(headers, self.sdp, method="INVITE", uri=self.uri)
        self.core.dialogs.register(self)
        self._invite = InviteClientTransaction(
            self.core.transactions, branch, request, self.peer, self._on_response
        )
        self._invite.start()

    def authenticate(self, challenge: SipResponse, username: str, password: str) -> bool:
        """Answer a 401/407 with a new INVITE carrying credentials; False if we cannot."""
        if self.authenticated:
            return False  # the credentials were refused already
        name = "WWW-Authenticate" if challenge.status == 401 else "Proxy-Authenticate"
        value = challenge.headers.get(name)
        if not value:
            return False
        try:
            answer = Challenge.parse(value).answer("INVITE", self.uri, username, password)
        except DigestError as exc:
            log.warning("cannot answer the challenge of %s: %s", self.uri, exc)
            return False
        self.authenticated = True
        self.cseq += 1
        self.state, self.provisional = "calling", False
        header = "Authorization" if challenge.status == 401 else "Proxy-Authorization"
        self.send_invite((header, answer))
        return True

    def _on_response(self, response: SipResponse | None) -> None:
        if response is None:
            self.state = "ended"
            self._forget()
            self.listener(self, None)
            return
        self.responded = True
        if response.status < 200:
            if response.status > 100:
                self.provisional = True
                self.state = "early"
                if self.cancelled:
                    self._send_cancel()
            self.listener(self, response)
            return
        if response.status < 300:
            self._on_2xx(response)
            return
        if response.status not in (401, 407):
            self.state = "ended"
            self._forget()
        self.listener(self, response)

    def _on_2xx(self, response: SipResponse) -> None:
        first = self.answer is None
        if first:
            self.answer = response
            self.remote_tag = response.to.tag or ""
            self.remote_target = contact_uri(response.headers.get("Contact") or "") or self.uri
            # The route set of a UAC is the 2xx's Record-Route, reversed (RFC 3261 §12.1.2).
            self.route_set = list(reversed(response.headers.get_all("Record-Route")))
            self.state = "confirmed"
            self._ack = self._build_ack(response)
        if self._ack is not None:
            self.peer.send(self._ack)
        if first:
            if self.cancelled:
                self.bye()  # the 200 crossed our CANCEL: end it at once
            self.listener(self, response)

    def on_2xx(self, response: SipResponse) -> None:
        """A retransmitted 2xx: repeat the ACK."""
        if self._ack is not None and response.to.tag == self.remote_tag:
            self.peer.send(self._ack)

    def _dialog_headers(self, method: str, number: int, branch: str) -> Headers:
        headers = Headers()
        headers.add("Via", self._via(branch))
        headers.add("Max-Forwards", "70")
        headers.add("From", self.from_header)
        headers.add("To", f"{self.to_header};tag={self.remote_tag}")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{number} {method}")
        for route in self.route_set:
            headers.add("Route", route)
        return headers

    def _build_ack(self, response: SipResponse) -> bytes:
        headers = self._dialog_headers("ACK", self.cseq, new_branch())
        return SipRequest(headers, b"", method="ACK", uri=self.remote_target).serialise()

    def cancel(self) -> None:
        """Stop ringing: CANCEL now if the far end sent a provisional response, else when it does."""
        if self.cancelled or self.state in ("confirmed", "ended"):
            return
        self.cancelled = True
        if self.provisional or self.responded:
            self._send_cancel()

    def _send_cancel(self) -> None:
        if self._invite is None:
            return
        request = self._invite.cancel_request()
        transactions = self.core.transactions
        ClientTransaction(
            transactions, self._invite.branch, request.serialise(), self.peer, "CANCEL"
        ).start()

    def bye(self) -> None:
        """Hang up an answered call (BYE, retransmitted until answered)."""
        if self.state != "confirmed":
            return
        self.state = "ended"
        self.cseq += 1
        branch = new_branch()
        headers = self._dialog_headers("BYE", self.cseq, branch)
        headers.add("User-Agent", self.core.user_agent)
        data = SipRequest(headers, b"", method="BYE", uri=self.remote_target).serialise()
        ClientTransaction(self.core.transactions, branch, data, self.peer, "BYE").start()
        self._forget()

    def abandon(self) -> None:
        """Stop everything about this call without telling the far end (it never answered)."""
        if self._invite is not None:
            self._invite.finish(0)
        self.state = "ended"
        self._forget()

    def _forget(self) -> None:
        # Keep the dialog known as long as the far end may resend its 2xx, so each is ACKed.
        self.core.dialogs.forget(self, after=TIMEOUT if self.answer is not None else 0.0)

    # Requests from the far end -----------------------------------------------------------

    def on_request(self, request: SipRequest, tx: ServerTransaction) -> None:
        """An in-dialog request from the callee (server dispatch)."""
        method = request.method
        contact = [("Contact", self.contact)]
        if method == "BYE":
            tx.respond(response_to(request, 200))
            if self.state == "confirmed":
                self.state = "ended"
                self._forget()
                if self.on_bye is not None:
                    self.on_bye()
        elif method == "INFO":
            tx.respond(response_to(request, 200))
            key = parse_info_body(request.content_type, request.body)
            if key is not None and self.on_key is not None:
                self.on_key(key)
        elif method in ("INVITE", "UPDATE"):
            body = self.on_offer(request) if self.on_offer is not None else b""
            extra = contact + ([("Content-Type", "application/sdp")] if body else [])
            tx.respond(response_to(request, 200, body=body, extra=extra))
        elif method == "OPTIONS":
            tx.respond(response_to(request, 200, extra=contact))
        else:
            tx.respond(
                response_to(request, 405, extra=[("Allow", "INVITE, ACK, BYE, INFO, OPTIONS")])
            )
