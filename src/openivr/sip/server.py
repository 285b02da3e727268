"""The SIP server: listens, routes each new call to a handler, drains when the node stops.

The layers below do the rest: `transport` (sockets and peers), `transaction` (retransmissions
and the table that matches messages to transactions), `dialog` (the calls we answer, and the
table of every dialog). Here each message from the wire is handed to the right one, a new
INVITE is routed (`Router`) and becomes a `MediaCall` with its RTP session, and call records are
reported when calls end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from openivr import logs
from openivr.sip.call import MediaCall, SipCallRecord
from openivr.sip.clock import MediaClock
from openivr.sip.dialog import (
    ALLOWED,
    DialogTable,
    IncomingDialog,
    UserAgentCore,
    not_served,
)
from openivr.sip.media import PortRange, RtpSession
from openivr.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    bad_request,
    caller_of,
    new_tag,
    parse_message,
    response_to,
    route_key_of,
)
from openivr.sip.sdp import (
    LocalSession,
    MediaAgreement,
    NoCommonCodec,
    SdpError,
    SessionDescription,
    negotiate,
)
from openivr.sip.srtp import SdesKey, SrtpMode, SrtpRefused, SrtpSocket, agree
from openivr.sip.tls import TlsConfig
from openivr.sip.transaction import Clock, ServerTransaction, TransactionTable, server_key
from openivr.sip.transport import Peer, TransportName, Transports

if TYPE_CHECKING:
    from openivr.guard.flood import FloodGate
    from openivr.sip.registrar import Registrar

log = logging.getLogger(__name__)

# New requests a flood is made of, limited per source before they are even parsed (in-dialog
# requests of calls in progress, responses and ACK/CANCEL/BYE are never held back).
RATE_LIMITED = (b"INVITE ", b"REGISTER ", b"OPTIONS ", b"SUBSCRIBE ", b"MESSAGE ", b"PUBLISH ")


# Routing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invite:
    """A new call as the router sees it."""

    request: SipRequest
    route_key: str
    caller: str
    call_id: str
    source: tuple[str, int]
    transport: TransportName


CallHandler = Callable[[MediaCall], Awaitable[None]]


@dataclass(frozen=True)
class Accept:
    """Router verdict: take the call and run `handler` on it (it rings/answers itself)."""

    handler: CallHandler


@dataclass(frozen=True)
class Reject:
    """Router verdict: refuse the call with a SIP status (e.g. 404 for an unknown number)."""

    status: int
    reason: str = ""


Router = Callable[[Invite], Awaitable[Accept | Reject]]


@dataclass
class SipServerConfig:
    """Where to listen and the limits of the SIP server."""

    host: str = "127.0.0.1"
    port: int = 5060
    udp: bool = True
    tcp: bool = True
    rtp_ports: tuple[int, int] = (20000, 29999)
    max_calls: int = 500
    advertised_address: str | None = None
    user_agent: str = "OpenIVR"
    # SIP over TLS: the port (None: no TLS listener; 0 picks a free one) and our certificate,
    # also the CAs that sign the certificates of the TLS peers we call.
    tls_port: int | None = None
    tls: TlsConfig | None = None
    # Whether calls' media is SRTP: off, offer (when the far end wants it, over TLS), require.
    srtp: SrtpMode = "offer"


# The server ---------------------------------------------------------------------------------


class SipServer:
    """A SIP UAS on UDP, TCP and TLS that hands routed calls to handlers."""

    def __init__(
        self,
        router: Router,
        config: SipServerConfig | None = None,
        *,
        on_call_end: Callable[[SipCallRecord], None] | None = None,
        registrar: Registrar | None = None,
        flood: FloodGate | None = None,
        on_flood: Callable[[str], None] | None = None,
    ) -> None:
        self.router = router
        # Requests per second per source (guard/flood.py); over it, dropped before parsing.
        self.flood = flood
        self.on_flood = on_flood
        self.config = config or SipServerConfig()
        self.on_call_end = on_call_end
        # Set while the node stops: calls in progress go on, new ones are refused.
        self.draining = False
        self.registrar = registrar
        self.clock = MediaClock()
        self.ports = PortRange(*self.config.rtp_ports)
        self.calls: dict[str, MediaCall] = {}
        self.transports = Transports(
            self.receive,
            host=self.config.host,
            advertised_address=self.config.advertised_address,
            tls=self.config.tls,
        )
        timers = Clock()
        self.core = UserAgentCore(
            transports=self.transports,
            transactions=TransactionTable(timers),
            dialogs=DialogTable(timers),
            user_agent=self.config.user_agent,
            srtp=self.config.srtp,
        )
        self._parse_errors = 0
        # RTP packets the system refused to send, of calls that have ended (for /metrics).
        self.rtp_send_errors = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # Slots of --max-calls held by calls this node places on its own (a callback's legs).
        self.placed_calls = 0

    @property
    def transactions(self) -> TransactionTable:
        """The transactions in progress, both ways."""
        return self.core.transactions

    @property
    def dialogs(self) -> DialogTable:
        """The calls in progress we answered and placed."""
        return self.core.dialogs

    @property
    def udp_port(self) -> int:
        """Our UDP port (0 when not listening)."""
        return self.transports.udp_port

    @property
    def tcp_port(self) -> int:
        """Our TCP port (0 when not listening)."""
        return self.transports.tcp_port

    @property
    def tls_port(self) -> int:
        """Our TLS port (0 when not listening)."""
        return self.transports.tls_port

    @property
    def malformed(self) -> int:
        """Messages we could not parse or frame."""
        return self._parse_errors + self.transports.framing_errors

    @property
    def advertised_host(self) -> str:
        """The address we put in Contact, Via and SDP when no peer is known."""
        return self.transports.advertised_host

    def address_for(self, peer: tuple[str, int]) -> str:
        """The address we put in Contact, Via and SDP for this peer (see Transports)."""
        return self.transports.address_for(peer)

    def port_for(self, peer: Peer) -> int:
        """Our listening port on the peer's transport."""
        return self.transports.port_for(peer)

    def udp_peer(self, addr: tuple[str, int]) -> Peer:
        """Where to send a request of ours over UDP (from our listening socket)."""
        return self.transports.udp_peer(addr)

    async def tcp_peer(self, addr: tuple[str, int], timeout: float = 5.0) -> Peer:
        """A TCP connection to `addr` for requests of ours (see Transports.tcp_peer)."""
        return await self.transports.tcp_peer(addr, timeout)

    @property
    def active_calls(self) -> int:
        """Calls being routed, ringing or up, and the slots of calls we place ourselves."""
        return self.dialogs.calls_in_progress + self.placed_calls

    def reserve(self, count: int) -> bool:
        """Hold `count` of --max-calls for calls we place (False, holding none, when they are
        not free)."""
        if self.active_calls + count > self.config.max_calls:
            return False
        self.placed_calls += count
        return True

    def release(self, count: int) -> None:
        """Give back slots `reserve` held."""
        self.placed_calls = max(0, self.placed_calls - count)

    async def start(self) -> None:
        """Bind the UDP, TCP and TLS listeners (port 0 picks a free port; see udp_port,
        tcp_port, tls_port)."""
        await self.transports.listen(
            self.config.port,
            udp=self.config.udp,
            tcp=self.config.tcp,
            tls_port=self.config.tls_port,
        )
        log.info(
            "SIP listening on %s udp=%s tcp=%s tls=%s",
            self.config.host,
            self.udp_port,
            self.tcp_port,
            self.tls_port or "off",
        )

    async def drain(self, timeout: float) -> None:
        """Refuse new calls (503) and give the calls in progress up to `timeout` s to end."""
        self.draining = True
        if not self.active_calls:
            return
        log.info(
            "stopping: %d calls in progress may finish (up to %g s); new calls get 503",
            self.active_calls,
            timeout,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.active_calls and loop.time() < deadline:
            await asyncio.sleep(0.1)
        if self.active_calls:
            log.warning("drain time is up: hanging up %d calls", self.active_calls)

    async def stop(self) -> None:
        """Hang up every call and close the listeners."""
        for call in list(self.calls.values()):
            await call.hangup()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.transactions.close()
        await self.transports.close()

    async def __aenter__(self) -> SipServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # Receiving ------------------------------------------------------------------------------

    def receive(self, data: bytes, peer: Peer, stream: bool) -> None:
        """Handle one message from the wire; nothing that arrives may raise out of here."""
        if not data.strip():
            return  # keep-alive
        if (
            self.flood is not None
            and data.startswith(RATE_LIMITED)
            and not self.flood.allow(peer.addr[0])
        ):
            if self.on_flood is not None:
                self.on_flood(peer.addr[0])
            return
        try:
            message = parse_message(data, stream=stream)
        except SipParseError as exc:
            self._parse_errors += 1
            reply = bad_request(data, str(exc))
            if reply is not None:
                peer.send(reply)
            return
        try:
            if isinstance(message, SipRequest):
                self._on_request(message, peer)
            else:
                self._on_response(message)
        except (SipParseError, SdpError) as exc:
            self._parse_errors += 1
            if isinstance(message, SipRequest) and message.method != "ACK":
                peer.send(response_to(message, 400, f"Bad Request ({exc})"[:120]).serialise())
        except Exception:
            log.exception("failed handling %s from %s", type(message).__name__, peer.addr)
            if isinstance(message, SipRequest) and message.method != "ACK":
                peer.send(response_to(message, 500).serialise())

    def _on_response(self, response: SipResponse) -> None:
        tx = self.transactions.matching(response)
        if tx is not None:
            tx.receive(response)
        elif response.cseq.method == "INVITE" and 200 <= response.status < 300:
            # The INVITE transaction is over; a repeated 2xx still needs our ACK.
            dialog = self.dialogs.outgoing(response.call_id, response.from_.tag or "")
            if dialog is not None:
                dialog.on_2xx(response)

    def _on_request(self, request: SipRequest, peer: Peer) -> None:
        method = request.method
        key = server_key(request, "INVITE" if method == "ACK" else method)
        existing = self.transactions.server(key)
        if existing is not None:
            if method == "ACK":
                if existing.final_status >= 300:
                    existing.acked()
                else:  # some UAs reuse the INVITE branch in the ACK for a 2xx
                    dialog = self.dialogs.incoming(request)
                    if dialog is not None:
                        dialog.on_ack(request)
            elif existing.is_invite and existing.final_status == 200:
                dialog = self.dialogs.incoming(request)
                if dialog is not None:
                    dialog.resend_2xx()
                else:
                    existing.resend()
            else:
                existing.resend()
            return
        if method == "ACK":
            dialog = self.dialogs.incoming(request)
            if dialog is not None:
                dialog.on_ack(request)
            return
        if method == "CANCEL":
            self._on_cancel(request, peer)
            return
        tx = ServerTransaction(self.transactions, key, request, peer)
        if request.to.tag is not None:
            self._in_dialog(request, tx)
            return
        if method == "INVITE":
            self._on_invite(request, tx, peer)
        elif method == "OPTIONS":
            tx.respond(self._options_response(request))
        elif method == "REGISTER" and self.registrar is not None:
            self._spawn(self._register(request, tx))
        elif method in ("BYE", "INFO", "UPDATE", "NOTIFY"):
            tx.respond(response_to(request, 481))
        else:
            tx.respond(not_served(request))

    def _in_dialog(self, request: SipRequest, tx: ServerTransaction) -> None:
        dialog = self.dialogs.incoming(request)
        if dialog is not None:
            if request.method == "OPTIONS":
                tx.respond(self._options_response(request))
            else:
                dialog.on_request(request, tx)
            return
        outgoing = self.dialogs.outgoing(request.call_id, request.to.tag or "")
        if outgoing is not None:
            outgoing.on_request(request, tx)
        elif request.method == "OPTIONS":
            tx.respond(self._options_response(request))
        else:
            tx.respond(response_to(request, 481))

    async def _register(self, request: SipRequest, tx: ServerTransaction) -> None:
        assert self.registrar is not None
        try:
            response = await self.registrar.handle(request, tx.peer.addr, tx.peer.name)
        except Exception:
            log.exception("REGISTER from %s failed", tx.peer.addr)
            response = response_to(request, 500)
        response.headers.add("Server", self.config.user_agent)
        tx.respond(response)

    def _options_response(self, request: SipRequest) -> SipResponse:
        # A balancer's keep-alive OPTIONS (Kamailio ds_ping_interval) learns we are stopping.
        return response_to(
            request,
            503 if self.draining else 200,
            to_tag=new_tag(),
            extra=[
                ("Allow", ", ".join(ALLOWED)),
                ("Accept", "application/sdp, application/dtmf-relay, application/dtmf"),
                ("Supported", "timer"),
                ("Server", self.config.user_agent),
            ],
        )

    def _on_cancel(self, cancel: SipRequest, peer: Peer) -> None:
        invite_tx = self.transactions.server(server_key(cancel, "INVITE"))
        tx = ServerTransaction(self.transactions, server_key(cancel, "CANCEL"), cancel, peer)
        if invite_tx is None:
            tx.respond(response_to(cancel, 481))
            return
        tx.respond(response_to(cancel, 200, to_tag=None))
        if invite_tx.final_status:
            return  # too late: the call was answered or refused already
        dialog = self.dialogs.answering(invite_tx)
        if dialog is None:
            invite_tx.respond(response_to(invite_tx.request, 487))
            return
        dialog.cancelled = True
        invite_tx.respond(response_to(invite_tx.request, 487, to_tag=dialog.local_tag))
        dialog.finish("caller", "cancel")

    # New calls ------------------------------------------------------------------------------

    def _on_invite(self, invite: SipRequest, tx: ServerTransaction, peer: Peer) -> None:
        if self.draining:
            # A balancer takes 503 as "try another node" (Kamailio: ds_next_dst on failure).
            tx.respond(response_to(invite, 503, extra=[("Retry-After", "30")]))
            self._record_rejected(invite, 503, "draining")
            return
        if self.active_calls >= self.config.max_calls:
            tx.respond(response_to(invite, 503, extra=[("Retry-After", "5")]))
            self._record_rejected(invite, 503, "max_calls")
            return
        tx.respond(response_to(invite, 100))
        agreement: MediaAgreement | None = None
        if invite.body:
            if invite.content_type != "application/sdp":
                tx.respond(response_to(invite, 415, extra=[("Accept", "application/sdp")]))
                return
            try:
                agreement = negotiate(SessionDescription.parse(invite.body))
                theirs = agree(
                    agreement.profile, agreement.srtp, self.config.srtp, peer.name == "TLS"
                )
            except (NoCommonCodec, SrtpRefused) as exc:
                tx.respond(response_to(invite, 488, f"Not Acceptable Here ({exc})"[:120]))
                self._record_rejected(invite, 488, str(exc))
                return
            agreement = replace(agreement, srtp=theirs)
        elif self.config.srtp == "require":
            # Our offer would go in the 200, too late to refuse an answer without a key.
            reason = "this node requires SRTP: the INVITE must offer it"
            tx.respond(response_to(invite, 488, f"Not Acceptable Here ({reason})"))
            self._record_rejected(invite, 488, reason)
            return
        dialog = IncomingDialog(self.core, invite, tx, peer, agreement)
        self._spawn(self._route(dialog))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _route(self, dialog: IncomingDialog) -> None:
        invite = dialog.invite
        # Every log line of this call (and of the tasks it starts) names its Call-ID.
        logs.call_id.set(invite.call_id)
        request = Invite(
            request=invite,
            route_key=route_key_of(invite),
            caller=caller_of(invite),
            call_id=invite.call_id,
            source=dialog.peer.addr,
            transport=dialog.peer.name,
        )
        try:
            verdict = await self.router(request)
        except Exception:
            log.exception("router failed for call %s", invite.call_id)
            verdict = Reject(500, "Router Error")
        if dialog.cancelled:
            return
        if isinstance(verdict, Reject):
            dialog.send_reject(verdict.status, verdict.reason)
            self._record_rejected(invite, verdict.status, verdict.reason or "rejected")
            return
        try:
            call = await self._make_call(dialog, request)
        except OSError as exc:
            log.warning("no RTP port for call %s: %s", invite.call_id, exc)
            dialog.send_reject(503, "No Media Port")
            return
        self.calls[call.call_id] = call
        await self._run_handler(call, verdict.handler)

    async def _make_call(self, dialog: IncomingDialog, invite: Invite) -> MediaCall:
        agreement = dialog.agreement or MediaAgreement(
            "PCMU", 0, 101, invite.source[0], 0, "sendrecv"
        )
        session = RtpSession(
            agreement.codec,
            agreement.payload_type,
            agreement.event_payload_type,
            (agreement.remote_address, agreement.remote_port),
            on_audio=lambda packet: None,
            on_event=lambda packet: None,
        )
        session.receives = agreement.receives
        sock = self.ports.bind(self.config.host)
        ours: SdesKey | None = None
        if agreement.srtp is not None:
            ours = SdesKey.new()
            sock = SrtpSocket.around(sock, ours, agreement.srtp)
        await session.open(sock)
        session.sending = agreement.may_send
        dialog.local_sdp = LocalSession(
            self.address_for(dialog.peer.addr), session.local_port, key=ours
        )
        call = MediaCall(
            call_id=invite.call_id,
            caller=invite.caller,
            dialed=invite.route_key,
            agreement=agreement,
            session=session,
            clock=self.clock,
            remote_sip=dialog.peer.addr,
            transport=dialog.peer.name,
            on_end=self._call_ended,
        )
        call.signalling = dialog
        dialog.call = call
        return call

    async def _run_handler(self, call: MediaCall, handler: CallHandler) -> None:
        try:
            await handler(call)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call handler failed for %s", call.call_id)
        finally:
            if not call.ended:
                await call.hangup()

    # Call records ----------------------------------------------------------------------------

    def _call_ended(self, call: MediaCall) -> None:
        self.calls.pop(call.call_id, None)
        self.rtp_send_errors += call.rtp_session.stats.send_errors
        dialog = call.signalling
        if isinstance(dialog, IncomingDialog):
            dialog.close()
            status = dialog.transaction.final_status
        else:
            status = 0
        if self.on_call_end is not None and call.hangup_event is not None:
            self.on_call_end(
                SipCallRecord(
                    call_id=call.call_id,
                    caller=call.caller,
                    dialed=call.dialed,
                    started_at=call.started_at,
                    answered_at=call.answered_at,
                    ended_at=call.ended_at or datetime.now(UTC),
                    ended_by=call.hangup_event.by,
                    status=status,
                    reason=call.hangup_event.reason,
                    transport=call.transport,
                    srtp=call.agreement.srtp is not None,
                )
            )

    def _record_rejected(self, invite: SipRequest, status: int, reason: str) -> None:
        if self.on_call_end is None:
            return
        now = datetime.now(UTC)
        try:
            self.on_call_end(
                SipCallRecord(
                    call_id=invite.call_id,
                    caller=caller_of(invite),
                    dialed=route_key_of(invite),
                    started_at=now,
                    answered_at=None,
                    ended_at=now,
                    ended_by="us",
                    status=status,
                    reason=reason,
                )
            )
        except Exception:
            log.exception("call-end hook failed for %s", invite.call_id)


__all__ = ["Accept", "CallHandler", "Invite", "Reject", "Router", "SipServer", "SipServerConfig"]
