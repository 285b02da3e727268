"""The SIP user agent server: transports, transactions, dialogs and the routing hook."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, cast

from openivr.sip.call import Call, CallRecord, HangupSide
from openivr.sip.dtmf import parse_info_body
from openivr.sip.media import MediaClock, PortRange, RtpSession
from openivr.sip.message import (
    MAGIC_COOKIE,
    MAX_MESSAGE_BYTES,
    REASONS,
    TOKEN,
    Headers,
    SipParseError,
    SipRequest,
    SipResponse,
    canonical_name,
    new_branch,
    new_tag,
    parse_message,
    response_to,
    split_head,
)
from openivr.sip.sdp import (
    LocalSession,
    MediaAgreement,
    NoCommonCodec,
    SdpError,
    SessionDescription,
    negotiate,
)

if TYPE_CHECKING:
    from openivr.sip.registrar import Registrar

log = logging.getLogger(__name__)

T1 = 0.5
T2 = 4.0
T4 = 5.0
ALLOWED = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "UPDATE", "NOTIFY")
# Methods other SIP entities use that we know but do not serve: 405, not 501.
KNOWN_UNSUPPORTED = frozenset(
    ("REGISTER", "SUBSCRIBE", "NOTIFY", "MESSAGE", "REFER", "PRACK", "PUBLISH")
)


# Routing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invite:
    """A new call as the router sees it."""

    request: SipRequest
    route_key: str
    caller: str
    call_id: str
    source: tuple[str, int]
    transport: str


CallHandler = Callable[[Call], Awaitable[None]]


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


def route_key_of(request: SipRequest) -> str:
    """The number the caller dialled: Request-URI user, else the To user, else ''."""
    try:
        user = request.request_uri.user
    except SipParseError:
        user = None
    return user or request.to.user() or ""


_WILDCARDS = ("0.0.0.0", "", "::")


@functools.lru_cache(maxsize=1024)
def _local_address_towards(host: str) -> str:
    """Which local address the system would send from to `host` (a UDP connect sends nothing)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, 9))
            return str(probe.getsockname()[0])
    except OSError:  # no route: say loopback rather than nothing
        return "127.0.0.1"


def caller_of(request: SipRequest) -> str:
    """Who calls: the From URI user, else its display name, else ''."""
    from_ = request.from_
    return from_.user() or from_.display or ""


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


# Transports ---------------------------------------------------------------------------------


class _Peer:
    """Where replies go: a UDP address or a TCP connection."""

    def __init__(
        self,
        name: str,
        addr: tuple[str, int],
        udp: asyncio.DatagramTransport | None = None,
        writer: asyncio.StreamWriter | None = None,
    ) -> None:
        self.name = name
        self.addr = addr
        self._udp = udp
        self._writer = writer

    @property
    def reliable(self) -> bool:
        return self._writer is not None

    @property
    def open(self) -> bool:
        """False once a TCP connection has closed."""
        return self._writer is None or not self._writer.is_closing()

    def send(self, data: bytes) -> None:
        try:
            if self._udp is not None:
                self._udp.sendto(data, self.addr)
            elif self._writer is not None and not self._writer.is_closing():
                self._writer.write(data)
        except OSError as exc:  # the peer went away; timers will end the call
            log.debug("send to %s failed: %s", self.addr, exc)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: SipServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        assert self.transport is not None
        peer = _Peer("UDP", (str(addr[0]), int(addr[1])), udp=self.transport)
        self.server.receive(data, peer, stream=False)

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP UDP socket error: %s", exc)


_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*\r?$", re.I | re.M)


# Transactions -------------------------------------------------------------------------------


class ServerTransaction:
    """Absorbs request retransmissions by resending the last response (RFC 3261 §17.2)."""

    def __init__(self, server: SipServer, key: tuple[str, ...], request: SipRequest, peer: _Peer):
        self.server = server
        self.key = key
        self.request = request
        self.peer = peer
        self.last_response: bytes | None = None
        self.final_status = 0
        self._timer: asyncio.TimerHandle | None = None
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def is_invite(self) -> bool:
        return self.request.method == "INVITE"

    def respond(self, response: SipResponse) -> None:
        """Send a response; a final one starts the retransmit/expiry timers."""
        if self.final_status:
            return
        data = response.serialise()
        self.last_response = data
        self.peer.send(data)
        if response.status < 200:
            return
        self.final_status = response.status
        loop = asyncio.get_running_loop()
        if self.is_invite and response.status >= 300 and not self.peer.reliable:
            self._timer = loop.call_later(T1, self._retransmit, T1)  # timer G until ACK
        # Timer H for INVITE errors, J for the rest: keep absorbing retransmits a while.
        self._expiry = loop.call_later(64 * T1, self.terminate)

    def _retransmit(self, interval: float) -> None:
        if self.last_response is not None:
            self.peer.send(self.last_response)
        interval = min(interval * 2, T2)
        self._timer = asyncio.get_running_loop().call_later(interval, self._retransmit, interval)

    def resend(self) -> None:
        """A retransmitted request arrived: repeat our last response."""
        if self.last_response is not None:
            self.peer.send(self.last_response)

    def acked(self) -> None:
        """ACK for a non-2xx final: stop retransmitting, linger for timer I."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().call_later(T4, self.terminate)

    def terminate(self) -> None:
        """Forget the transaction."""
        for timer in (self._timer, self._expiry):
            if timer is not None:
                timer.cancel()
        self.server._transactions.pop(self.key, None)


class ResponseSink(Protocol):
    """Something waiting for responses to a request we sent (keyed by branch and method)."""

    def receive(self, response: SipResponse) -> None:
        """A response matched this transaction."""

    def finish(self, status: int) -> None:
        """End the transaction (status 0 when the server stops)."""


class OutgoingDialogue(Protocol):
    """A dialog we started with our own INVITE (see uac.py)."""

    def on_request(self, request: SipRequest, tx: ServerTransaction) -> None:
        """An in-dialog request from the far end."""

    def on_2xx(self, response: SipResponse) -> None:
        """A retransmitted 2xx to our INVITE (answer it with ACK again)."""


class ClientTransaction:
    """A request we send (BYE, REFER, CANCEL): retransmitted with timer E until final or timer F."""

    def __init__(
        self,
        server: SipServer,
        branch: str,
        data: bytes,
        peer: _Peer,
        method: str = "BYE",
    ) -> None:
        self.server = server
        self.branch = branch
        self.method = method
        self.data = data
        self.peer = peer
        self.final_status = 0
        self.response: SipResponse | None = None
        self.done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._timeout: asyncio.TimerHandle | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.peer.send(self.data)
        if not self.peer.reliable:
            self._timer = loop.call_later(T1, self._retransmit, T1)
        self._timeout = loop.call_later(64 * T1, self.finish, 408)

    def _retransmit(self, interval: float) -> None:
        self.peer.send(self.data)
        interval = min(interval * 2, T2)
        self._timer = asyncio.get_running_loop().call_later(interval, self._retransmit, interval)

    def receive(self, response: SipResponse) -> None:
        """A response arrived: a final one ends the transaction."""
        if response.status >= 200:
            self.response = response
            self.finish(response.status)

    def finish(self, status: int) -> None:
        """Stop the timers and report the final status."""
        for timer in (self._timer, self._timeout):
            if timer is not None:
                timer.cancel()
        self.final_status = status
        if not self.done.done():
            self.done.set_result(status)
        self.server._client_transactions.pop((self.branch, self.method), None)


# Dialogs ------------------------------------------------------------------------------------


class Dialog:
    """The INVITE dialog of one call; implements the call's signalling."""

    def __init__(
        self,
        server: SipServer,
        invite: SipRequest,
        transaction: ServerTransaction,
        peer: _Peer,
        agreement: MediaAgreement | None,
    ) -> None:
        self.server = server
        self.invite = invite
        self.transaction = transaction
        self.peer = peer
        self.call_id = invite.call_id
        self.local_tag = new_tag()
        self.remote_tag = invite.from_.tag or ""
        self.agreement = agreement
        self.local_sdp: LocalSession | None = None
        self.call: Call | None = None
        self.cancelled = False
        self.local_cseq = secrets.randbelow(2**16) + 1
        self.remote_target = invite.headers.get("Contact") or ""
        # Proxies that stay in the path (a load balancer) record-route; our in-dialog
        # requests carry their route set, in the order received (RFC 3261 §12.1.1).
        self.route_set = invite.headers.get_all("Record-Route")
        self._pending_2xx: tuple[int, bytes] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._ack_deadline: asyncio.TimerHandle | None = None
        self.bye: ClientTransaction | None = None
        # Set by a transfer that waits for NOTIFYs about its REFER (refer.py).
        self.notify_sink: Callable[[SipRequest], None] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.call_id, self.local_tag)

    def _contact(self) -> str:
        transport = ";transport=tcp" if self.peer.reliable else ""
        host, port = self.server.address_for(self.peer.addr), self.server.port_for(self.peer)
        return f"<sip:openivr@{host}:{port}{transport}>"

    def _response(self, request: SipRequest, status: int, body: bytes = b"") -> SipResponse:
        extra: list[tuple[str, str]] = []
        if status < 300 and status > 100:
            extra.append(("Contact", self._contact()))
        if body:
            extra.append(("Content-Type", "application/sdp"))
        if status == 200 and request.method in ("INVITE", "UPDATE"):
            extra += _session_timer_headers(request)
        extra.append(("Server", self.server.config.user_agent))
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
                extra=[("Server", self.server.config.user_agent)],
            )
            self.transaction.respond(response)
        self.server._forget_dialog(self)

    def send_bye(self) -> None:
        """BYE to the caller (client transaction with retransmissions)."""
        self._stop_2xx()
        self.bye = self.send_request("BYE")
        self.server._forget_dialog(self)

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
        host, port = self.server.address_for(self.peer.addr), self.server.port_for(self.peer)
        headers.add("Via", f"SIP/2.0/{self.peer.name} {host}:{port};branch={branch};rport")
        headers.add("Max-Forwards", "70")
        headers.add("From", _with_tag(self.invite.headers.get("To") or "", self.local_tag))
        headers.add("To", self.invite.headers.get("From") or "")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self.local_cseq} {method}")
        for route in self.route_set:
            headers.add("Route", route)
        if method != "BYE":
            headers.add("Contact", self._contact())
        for name, value in extra or []:
            headers.add(name, value)
        headers.add("User-Agent", self.server.config.user_agent)
        target = _uri_of(self.remote_target) or self.invite.from_.uri
        request = SipRequest(headers, body, method=method, uri=target)
        tx = ClientTransaction(self.server, branch, request.serialise(), self.peer, method)
        self.server._client_transactions[(branch, method)] = tx
        tx.start()
        return tx

    # 2xx reliability (RFC 3261 §13.3.1.4) ---------------------------------------------------

    def _start_2xx(self, cseq: int, data: bytes) -> None:
        self._stop_2xx()
        self._pending_2xx = (cseq, data)
        loop = asyncio.get_running_loop()
        if not self.peer.reliable:
            self._timer = loop.call_later(T1, self._retransmit_2xx, T1)
        self._ack_deadline = loop.call_later(64 * T1, self._no_ack)

    def _retransmit_2xx(self, interval: float) -> None:
        if self._pending_2xx is None:
            return
        self.peer.send(self._pending_2xx[1])
        interval = min(interval * 2, T2)
        self._timer = asyncio.get_running_loop().call_later(
            interval, self._retransmit_2xx, interval
        )

    def _stop_2xx(self) -> None:
        for timer in (self._timer, self._ack_deadline):
            if timer is not None:
                timer.cancel()
        self._timer = self._ack_deadline = None
        self._pending_2xx = None

    def _no_ack(self) -> None:
        log.info("no ACK for 200 OK on call %s; hanging up", self.call_id)
        self._pending_2xx = None
        self.send_bye()
        if self.call is not None:
            self.call.finish("timeout", "no ACK")

    def resend_2xx(self) -> None:
        """A retransmitted INVITE after our 200: the 200 was lost, send it again."""
        if self._pending_2xx is not None:
            self.peer.send(self._pending_2xx[1])

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
            self.server._apply_agreement(self.call, agreement)

    def finish(self, by: HangupSide, reason: str) -> None:
        """The call ended by the caller side (BYE/CANCEL) or a timeout."""
        self._stop_2xx()
        self.server._forget_dialog(self)
        if self.call is not None:
            self.call.finish(by, reason)


def _with_tag(value: str, tag: str) -> str:
    return value if ";tag=" in value else f"{value};tag={tag}"


def _uri_of(contact: str) -> str | None:
    if not contact:
        return None
    if "<" in contact:
        return contact.split("<", 1)[1].split(">", 1)[0].strip() or None
    return contact.split(";", 1)[0].strip() or None


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


# The server ---------------------------------------------------------------------------------


class SipServer:
    """A SIP UAS on UDP and TCP that hands routed calls to handlers."""

    def __init__(
        self,
        router: Router,
        config: SipServerConfig | None = None,
        *,
        on_call_end: Callable[[CallRecord], None] | None = None,
        registrar: Registrar | None = None,
    ) -> None:
        self.router = router
        self.config = config or SipServerConfig()
        self.on_call_end = on_call_end
        # Set while the node stops: calls in progress go on, new ones are refused.
        self.draining = False
        # TCP connections by the far end's address: opened to us, and our own for calls we place.
        self._tcp_in: dict[tuple[str, int], _Peer] = {}
        self._tcp_out: dict[tuple[str, int], _Peer] = {}
        self.registrar = registrar
        self.clock = MediaClock()
        self.ports = PortRange(*self.config.rtp_ports)
        self.udp_port = 0
        self.tcp_port = 0
        self.calls: dict[str, Call] = {}
        self.malformed = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._transactions: dict[tuple[str, ...], ServerTransaction] = {}
        self._client_transactions: dict[tuple[str, str], ResponseSink] = {}
        self._dialogs: dict[tuple[str, str], Dialog] = {}
        self._outgoing: dict[tuple[str, str], OutgoingDialogue] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def advertised_host(self) -> str:
        """The address we put in Contact, Via and SDP when no peer is known."""
        if self.config.advertised_address:
            return self.config.advertised_address
        return "127.0.0.1" if self.config.host in _WILDCARDS else self.config.host

    def address_for(self, peer: tuple[str, int]) -> str:
        """The address we put in Contact, Via and SDP for this peer: the configured one, the
        listening address, or (listening on all interfaces) the local address the system routes
        to that peer from, so a phone on the LAN is told the LAN address and loopback stays
        loopback."""
        if self.config.advertised_address or self.config.host not in _WILDCARDS:
            return self.advertised_host
        return _local_address_towards(peer[0])

    def port_for(self, peer: _Peer) -> int:
        """Our listening port on the peer's transport."""
        return self.tcp_port if peer.reliable else self.udp_port

    @property
    def active_calls(self) -> int:
        """Calls being routed, ringing or up."""
        return len(self._dialogs)

    async def start(self) -> None:
        """Bind the UDP and TCP listeners (port 0 picks a free port; see udp_port/tcp_port)."""
        loop = asyncio.get_running_loop()
        port = self.config.port
        if self.config.udp:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.config.host, port)
            )
            self._udp = transport
            self.udp_port = transport.get_extra_info("sockname")[1]
            # With port 0, TCP takes the port UDP got so one number serves both.
            port = port or self.udp_port
        if self.config.tcp:
            try:
                self._tcp = await asyncio.start_server(
                    self._serve_tcp, self.config.host, port, limit=MAX_MESSAGE_BYTES
                )
            except OSError:
                if self.config.port:
                    raise
                self._tcp = await asyncio.start_server(
                    self._serve_tcp, self.config.host, 0, limit=MAX_MESSAGE_BYTES
                )
            self.tcp_port = self._tcp.sockets[0].getsockname()[1]
        log.info(
            "SIP listening on %s udp=%s tcp=%s", self.config.host, self.udp_port, self.tcp_port
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
        for tx in list(self._transactions.values()):
            tx.terminate()
        for ctx in list(self._client_transactions.values()):
            ctx.finish(0)
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    async def __aenter__(self) -> SipServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # Receiving ------------------------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        addr = writer.get_extra_info("peername")
        peer = _Peer("TCP", (str(addr[0]), int(addr[1])), writer=writer)
        self._tcp_in[peer.addr] = peer
        try:
            await self._read_stream(reader, writer, peer)
        finally:
            if self._tcp_in.get(peer.addr) is peer:
                del self._tcp_in[peer.addr]

    async def _read_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: _Peer
    ) -> None:
        """Read framed SIP messages from a TCP connection until it closes."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.strip():
                    continue  # CRLF keep-alive
                match = _CONTENT_LENGTH.search(head)
                length = int(match.group(1)) if match else 0
                if length > MAX_MESSAGE_BYTES:
                    self.malformed += 1
                    break  # framing cannot be trusted any more
                body = await reader.readexactly(length) if length else b""
                self.receive(head + body, peer, stream=True)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except ValueError:  # StreamReader raises it when a line passes the limit
            self.malformed += 1
        finally:
            writer.close()

    def receive(self, data: bytes, peer: _Peer, *, stream: bool) -> None:
        """Handle one message from the wire; nothing that arrives may raise out of here."""
        if not data.strip():
            return  # keep-alive
        try:
            message = parse_message(data, stream=stream)
        except SipParseError as exc:
            self.malformed += 1
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
            self.malformed += 1
            if isinstance(message, SipRequest) and message.method != "ACK":
                peer.send(response_to(message, 400, f"Bad Request ({exc})"[:120]).serialise())
        except Exception:
            log.exception("failed handling %s from %s", type(message).__name__, peer.addr)
            if isinstance(message, SipRequest) and message.method != "ACK":
                peer.send(response_to(message, 500).serialise())

    def _on_response(self, response: SipResponse) -> None:
        vias = response.vias
        method = response.cseq.method
        tx = self._client_transactions.get((vias[0].branch, method)) if vias else None
        if tx is not None:
            tx.receive(response)
        elif method == "INVITE" and 200 <= response.status < 300:
            # The INVITE transaction is over; a repeated 2xx still needs our ACK.
            dialogue = self._outgoing.get((response.call_id, response.from_.tag or ""))
            if dialogue is not None:
                dialogue.on_2xx(response)

    async def tcp_peer(self, addr: tuple[str, int], timeout: float = 5.0) -> _Peer:
        """A TCP connection to `addr` for outgoing requests: one `addr` opened to us (a phone that
        registered over it), else ours, opened once and reused; OSError when it cannot be opened."""
        for known in (self._tcp_in.get(addr), self._tcp_out.get(addr)):
            if known is not None and known.open:
                return known
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*addr), timeout)
        except TimeoutError:
            raise OSError(
                f"no TCP connection to {addr[0]}:{addr[1]} within {timeout:g} s"
            ) from None
        peer = _Peer("TCP", addr, writer=writer)
        self._tcp_out[addr] = peer

        async def read() -> None:
            try:
                await self._read_stream(reader, writer, peer)
            finally:
                if self._tcp_out.get(addr) is peer:
                    del self._tcp_out[addr]

        self._spawn(read())
        return peer

    def udp_peer(self, addr: tuple[str, int]) -> _Peer:
        """Where to send a request of ours over UDP (from our listening socket)."""
        if self._udp is None:
            raise RuntimeError("the SIP server has no UDP listener for outgoing requests")
        return _Peer("UDP", addr, udp=self._udp)

    @staticmethod
    def _transaction_key(request: SipRequest, method: str) -> tuple[str, ...]:
        via = request.vias[0]
        if via.branch.startswith(MAGIC_COOKIE):
            return (via.branch, f"{via.host}:{via.port or 5060}", method)
        # RFC 2543 peers: fall back to the dialog identifiers and CSeq.
        return (request.call_id, request.from_.tag or "", str(request.cseq.number), method)

    def _on_request(self, request: SipRequest, peer: _Peer) -> None:
        method = request.method
        tx_method = "INVITE" if method == "ACK" else method
        key = self._transaction_key(request, tx_method)
        existing = self._transactions.get(key)
        if existing is not None:
            if method == "ACK":
                if existing.final_status >= 300:
                    existing.acked()
                else:  # some UAs reuse the INVITE branch in the ACK for a 2xx
                    dialog = self._dialog_for(request)
                    if dialog is not None:
                        dialog.on_ack(request)
            elif existing.is_invite and existing.final_status == 200:
                dialog = self._dialogs.get((request.call_id, request.to.tag or ""))
                if dialog is not None:
                    dialog.resend_2xx()
                else:
                    existing.resend()
            else:
                existing.resend()
            return
        if method == "ACK":
            dialog = self._dialog_for(request)
            if dialog is not None:
                dialog.on_ack(request)
            return
        if method == "CANCEL":
            self._on_cancel(request, peer)
            return
        tx = ServerTransaction(self, key, request, peer)
        self._transactions[key] = tx
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
            tx.respond(self._unsupported(request))

    async def _register(self, request: SipRequest, tx: ServerTransaction) -> None:
        assert self.registrar is not None
        try:
            response = await self.registrar.handle(request, tx.peer.addr, tx.peer.name)
        except Exception:
            log.exception("REGISTER from %s failed", tx.peer.addr)
            response = response_to(request, 500)
        response.headers.add("Server", self.config.user_agent)
        tx.respond(response)

    def _unsupported(self, request: SipRequest) -> SipResponse:
        if request.method in KNOWN_UNSUPPORTED:
            return response_to(request, 405, extra=[("Allow", ", ".join(ALLOWED))])
        return response_to(request, 501, extra=[("Allow", ", ".join(ALLOWED))])

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

    def _dialog_for(self, request: SipRequest) -> Dialog | None:
        return self._dialogs.get((request.call_id, request.to.tag or ""))

    def _on_cancel(self, cancel: SipRequest, peer: _Peer) -> None:
        invite_tx = self._transactions.get(self._transaction_key(cancel, "INVITE"))
        key = self._transaction_key(cancel, "CANCEL")
        tx = ServerTransaction(self, key, cancel, peer)
        self._transactions[key] = tx
        if invite_tx is None:
            tx.respond(response_to(cancel, 481))
            return
        tx.respond(response_to(cancel, 200, to_tag=None))
        if invite_tx.final_status:
            return  # too late: the call was answered or refused already
        dialog = next((d for d in self._dialogs.values() if d.transaction is invite_tx), None)
        if dialog is None:
            invite_tx.respond(response_to(invite_tx.request, 487))
            return
        dialog.cancelled = True
        invite_tx.respond(response_to(invite_tx.request, 487, to_tag=dialog.local_tag))
        dialog.finish("caller", "cancel")

    def _on_invite(self, invite: SipRequest, tx: ServerTransaction, peer: _Peer) -> None:
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
            except NoCommonCodec as exc:
                tx.respond(response_to(invite, 488, f"Not Acceptable Here ({exc})"[:120]))
                self._record_rejected(invite, 488, str(exc))
                return
        dialog = Dialog(self, invite, tx, peer, agreement)
        self._dialogs[dialog.key] = dialog
        self._spawn(self._route(dialog))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _route(self, dialog: Dialog) -> None:
        invite = dialog.invite
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

    async def _make_call(self, dialog: Dialog, invite: Invite) -> Call:
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
        await session.open(self.ports.bind(self.config.host))
        session.sending = agreement.may_send
        dialog.local_sdp = LocalSession(self.address_for(dialog.peer.addr), session.local_port)
        call = Call(
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

    async def _run_handler(self, call: Call, handler: CallHandler) -> None:
        try:
            await handler(call)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call handler failed for %s", call.call_id)
        finally:
            if not call.ended:
                await call.hangup()

    def _apply_agreement(self, call: Call, agreement: MediaAgreement) -> None:
        session = call._session
        session.remote = (agreement.remote_address, agreement.remote_port)
        session.sending = agreement.may_send
        call.agreement = agreement

    # In-dialog requests ----------------------------------------------------------------------

    def _in_dialog(self, request: SipRequest, tx: ServerTransaction) -> None:
        dialog = self._dialog_for(request)
        if dialog is None:
            outgoing = self._outgoing.get((request.call_id, request.to.tag or ""))
            if outgoing is not None:
                outgoing.on_request(request, tx)
                return
            if request.method == "OPTIONS":
                tx.respond(self._options_response(request))
            else:
                tx.respond(response_to(request, 481))
            return
        method = request.method
        if method == "BYE":
            tx.respond(dialog._response(request, 200))
            dialog.finish("caller", "bye")
        elif method in ("INVITE", "UPDATE"):
            self._on_offer(dialog, request, tx)
        elif method == "INFO":
            tx.respond(dialog._response(request, 200))
            key = parse_info_body(request.content_type, request.body)
            if key is not None and dialog.call is not None:
                dialog.call.receive_key(key, "info")
        elif method == "OPTIONS":
            tx.respond(self._options_response(request))
        elif method == "NOTIFY":
            tx.respond(dialog._response(request, 200))
            if dialog.notify_sink is not None:
                dialog.notify_sink(request)
        else:
            tx.respond(self._unsupported(request))

    def _on_offer(self, dialog: Dialog, request: SipRequest, tx: ServerTransaction) -> None:
        call = dialog.call
        if call is None or dialog.local_sdp is None or call.state != "answered":
            tx.respond(response_to(request, 491 if request.method == "INVITE" else 500))
            return
        body = b""
        if request.body:
            try:
                offered = negotiate(SessionDescription.parse(request.body))
            except NoCommonCodec as exc:
                tx.respond(response_to(request, 488, f"Not Acceptable Here ({exc})"[:120]))
                return
            # Keep our codec for the rest of the call when it is still offered.
            agreement = MediaAgreement(
                call.codec if _offers(request.body, call.agreement) else offered.codec,
                call.agreement.payload_type
                if _offers(request.body, call.agreement)
                else offered.payload_type,
                offered.event_payload_type,
                offered.remote_address,
                offered.remote_port,
                offered.direction,
            )
            if agreement.codec != call.codec:
                tx.respond(response_to(request, 488, "Not Acceptable Here (codec change)"))
                return
            self._apply_agreement(call, agreement)
            dialog.agreement = agreement
            body = dialog.local_sdp.answer(agreement)
        elif request.method == "INVITE":
            body = dialog.local_sdp.answer(call.agreement)
        response = dialog._response(request, 200, body)
        tx.respond(response)
        if request.method == "INVITE":
            dialog._start_2xx(request.cseq.number, response.serialise())

    # Bookkeeping -----------------------------------------------------------------------------

    def _forget_dialog(self, dialog: Dialog) -> None:
        self._dialogs.pop(dialog.key, None)

    def _call_ended(self, call: Call) -> None:
        self.calls.pop(call.call_id, None)
        dialog = call.signalling
        if isinstance(dialog, Dialog):
            dialog._stop_2xx()
            self._forget_dialog(dialog)
            status = dialog.transaction.final_status
        else:
            status = 0
        if self.on_call_end is not None and call.hangup_event is not None:
            self.on_call_end(
                CallRecord(
                    call_id=call.call_id,
                    caller=call.caller,
                    dialed=call.dialed,
                    started_at=call.started_at,
                    answered_at=call.answered_at,
                    ended_at=call.ended_at or datetime.now(UTC),
                    ended_by=call.hangup_event.by,
                    status=status,
                    reason=call.hangup_event.reason,
                )
            )

    def _record_rejected(self, invite: SipRequest, status: int, reason: str) -> None:
        if self.on_call_end is None:
            return
        now = datetime.now(UTC)
        try:
            self.on_call_end(
                CallRecord(
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


def _offers(body: bytes, current: MediaAgreement) -> bool:
    try:
        audio = SessionDescription.parse(body).audio()
    except SdpError:
        return False
    if audio is None:
        return False
    return any((audio.encoding(pt) or "").upper().startswith(current.codec) for pt in audio.formats)


def bad_request(data: bytes, problem: str) -> bytes | None:
    """A 400 for a request we could not parse, if enough of it is readable to address one."""
    parts = split_head(data.lstrip(b"\r\n"))
    head = (parts[0] if parts else data).decode("utf-8", "replace")
    lines = head.replace("\r\n", "\n").split("\n")
    first = lines[0].split(" ")
    if not first or not TOKEN.match(first[0]) or first[0].upper() in ("ACK", "SIP/2.0"):
        return None  # never answer an ACK or a response
    if first[0].startswith("SIP/"):
        return None
    copied: list[str] = []
    needed = {"via", "from", "to", "call-id", "cseq"}
    compact = {"v": "via", "f": "from", "t": "to", "i": "call-id"}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        lname = compact.get(name.strip().lower(), name.strip().lower())
        if colon and lname in needed and value.strip():
            copied.append(f"{canonical_name(lname)}: {value.strip()}")
            if lname != "via":
                needed.discard(lname)
    if needed - {"via"} or not any(c.lower().startswith("via:") for c in copied):
        return None
    reason = "".join(ch for ch in problem if ch.isprintable())[:100]
    text = f"SIP/2.0 400 Bad Request ({reason})\r\n" + "\r\n".join(copied)
    return (text + "\r\nContent-Length: 0\r\n\r\n").encode("utf-8", "replace")


__all__ = [
    "REASONS",
    "Accept",
    "Call",
    "Invite",
    "Reject",
    "SipServer",
    "SipServerConfig",
    "bad_request",
    "caller_of",
    "route_key_of",
]
