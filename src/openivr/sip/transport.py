"""SIP transports (RFC 3261 §18): our listening sockets and the peers messages come from.

Everything above this module sees a `Peer`: where a reply goes, whether the transport is
reliable (no retransmissions then) and how to name it in Via and Contact. UDP peers share our
listening socket; stream peers are one connection each (opened to us, or by us and reused), read
by `read_stream`, which frames messages by Content-Length. TLS is one more stream transport:
asyncio hands its listener and its connections the same reader and writer, so they are
`StreamPeer`s named "TLS"; the certificates and contexts are `sip/tls.py`'s.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol, cast

from openivr.sip.message import MAX_MESSAGE_BYTES
from openivr.sip.tls import HANDSHAKE_SECONDS, TlsConfig

log = logging.getLogger(__name__)

TransportName = Literal["UDP", "TCP", "TLS"]

# What the layer above does with one message from the wire: (data, peer, came over a stream).
Deliver = Callable[[bytes, "Peer", bool], None]

_WILDCARDS = ("0.0.0.0", "", "::")
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*\r?$", re.I | re.M)


class Peer(Protocol):
    """Where a message came from and where replies to it go."""

    @property
    def name(self) -> TransportName:
        """The transport, as written in Via ('UDP', 'TCP', 'TLS')."""

    @property
    def addr(self) -> tuple[str, int]:
        """The far end's address and port."""

    @property
    def reliable(self) -> bool:
        """True when the transport retransmits itself (a stream), so SIP timers do not resend."""

    @property
    def open(self) -> bool:
        """False once a stream connection has closed."""

    def send(self, data: bytes) -> None:
        """Send one message; a failure is logged, never raised (timers end what it breaks)."""


class DatagramPeer:
    """A far end reached by UDP datagrams from our listening socket."""

    name: TransportName = "UDP"
    reliable = False
    open = True

    def __init__(self, addr: tuple[str, int], udp: asyncio.DatagramTransport) -> None:
        self.addr = addr
        self._socket = udp

    def send(self, data: bytes) -> None:
        """Send one datagram."""
        try:
            self._socket.sendto(data, self.addr)
        except OSError as exc:  # the peer went away; timers will end the call
            log.debug("send to %s failed: %s", self.addr, exc)


class StreamPeer:
    """A far end on a stream connection of its own (TCP, or TLS over TCP)."""

    reliable = True

    def __init__(
        self, name: TransportName, addr: tuple[str, int], writer: asyncio.StreamWriter
    ) -> None:
        self.name = name
        self.addr = addr
        self._writer = writer

    @property
    def open(self) -> bool:
        """False once the connection has closed."""
        return not self._writer.is_closing()

    def send(self, data: bytes) -> None:
        """Write one message to the connection (nothing once it is closing)."""
        try:
            if not self._writer.is_closing():
                self._writer.write(data)
        except OSError as exc:
            log.debug("send to %s failed: %s", self.addr, exc)


async def read_stream(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    peer: Peer,
    deliver: Deliver,
    on_malformed: Callable[[], None],
) -> None:
    """Read messages framed by Content-Length from a connection until it closes, then close it."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.strip():
                continue  # CRLF keep-alive
            match = _CONTENT_LENGTH.search(head)
            length = int(match.group(1)) if match else 0
            if length > MAX_MESSAGE_BYTES:
                on_malformed()
                break  # framing cannot be trusted any more
            body = await reader.readexactly(length) if length else b""
            deliver(head + body, peer, True)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    except ValueError:  # StreamReader raises it when a line passes the limit
        on_malformed()
    finally:
        writer.close()


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


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        assert self.transport is not None
        self.deliver(data, DatagramPeer((str(addr[0]), int(addr[1])), self.transport), False)

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP UDP socket error: %s", exc)


class Transports:
    """Our UDP socket and stream listeners, the connections to and from peers, and the address
    and port we name in Via, Contact and SDP for each peer.

    Stream transports are handled by name: the TLS listener is `_listen_stream("TLS", ...)`
    with our certificate's context, and `stream_peer("TLS", ...)` a connection opened with a
    context that checks the far end's; ports, connection reuse and framing are shared."""

    def __init__(
        self,
        deliver: Deliver,
        *,
        host: str,
        advertised_address: str | None = None,
        tls: TlsConfig | None = None,
    ) -> None:
        self.deliver = deliver
        self.host = host
        self.advertised_address = advertised_address
        # Our certificate (for a TLS listener) and the CAs of peers we call over TLS.
        self.tls = tls or TlsConfig()
        # Our listening port per transport (absent when not listening on it).
        self.ports: dict[TransportName, int] = {}
        # Messages whose framing broke a connection (too long, no end of headers).
        self.framing_errors = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._listeners: list[asyncio.Server] = []
        # Stream connections by transport and far-end address: opened to us, and our own.
        self._streams_in: dict[tuple[TransportName, tuple[str, int]], StreamPeer] = {}
        self._streams_out: dict[tuple[TransportName, tuple[str, int]], StreamPeer] = {}
        self._readers: set[asyncio.Task[None]] = set()

    @property
    def udp_port(self) -> int:
        """Our UDP port (0 when not listening)."""
        return self.ports.get("UDP", 0)

    @property
    def tcp_port(self) -> int:
        """Our TCP port (0 when not listening)."""
        return self.ports.get("TCP", 0)

    @property
    def tls_port(self) -> int:
        """Our TLS port (0 when not listening)."""
        return self.ports.get("TLS", 0)

    # Listening -------------------------------------------------------------------------------

    async def listen(
        self, port: int, *, udp: bool = True, tcp: bool = True, tls_port: int | None = None
    ) -> None:
        """Bind UDP and TCP (port 0 picks a free port, the same for both when it can), and TLS
        on `tls_port` when given (0 picks a free one) with our certificate."""
        loop = asyncio.get_running_loop()
        stream_port = port
        if udp:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self.deliver), local_addr=(self.host, port)
            )
            self._udp = transport
            self.ports["UDP"] = transport.get_extra_info("sockname")[1]
            # With port 0, TCP takes the port UDP got so one number serves both.
            stream_port = port or self.ports["UDP"]
        if tcp:
            try:
                await self._listen_stream("TCP", stream_port)
            except OSError:
                if port:
                    raise
                await self._listen_stream("TCP", 0)
        if tls_port is not None:
            await self._listen_stream("TLS", tls_port, self.tls.server_context())

    async def _listen_stream(
        self, name: TransportName, port: int, context: ssl.SSLContext | None = None
    ) -> None:
        server = await asyncio.start_server(
            functools.partial(self._serve_stream, name),
            self.host,
            port,
            limit=MAX_MESSAGE_BYTES,
            ssl=context,
            ssl_handshake_timeout=HANDSHAKE_SECONDS if context is not None else None,
        )
        self._listeners.append(server)
        self.ports[name] = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop reading our own connections and close the listeners."""
        for task in list(self._readers):
            task.cancel()
        if self._readers:
            await asyncio.gather(*self._readers, return_exceptions=True)
        if self._udp is not None:
            self._udp.close()
        for server in self._listeners:
            server.close()
            await server.wait_closed()

    def _malformed(self) -> None:
        self.framing_errors += 1

    async def _serve_stream(
        self, name: TransportName, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        addr = writer.get_extra_info("peername")
        peer = StreamPeer(name, (str(addr[0]), int(addr[1])), writer)
        key = (name, peer.addr)
        self._streams_in[key] = peer
        try:
            await read_stream(reader, writer, peer, self.deliver, self._malformed)
        finally:
            if self._streams_in.get(key) is peer:
                del self._streams_in[key]

    # Peers for requests of ours ------------------------------------------------------------

    def udp_peer(self, addr: tuple[str, int]) -> Peer:
        """Where to send a request of ours over UDP (from our listening socket)."""
        if self._udp is None:
            raise RuntimeError("the SIP server has no UDP listener for outgoing requests")
        return DatagramPeer(addr, self._udp)

    async def tcp_peer(self, addr: tuple[str, int], timeout: float = 5.0) -> Peer:
        """A TCP connection to `addr` for requests of ours (see stream_peer)."""
        return await self.stream_peer("TCP", addr, timeout)

    async def stream_peer(
        self,
        name: TransportName,
        addr: tuple[str, int],
        timeout: float = 5.0,
        *,
        server_hostname: str | None = None,
    ) -> Peer:
        """A stream connection to `addr` for outgoing requests: one `addr` opened to us (a phone
        that registered over it), else ours, opened once and reused; OSError when it cannot be
        opened (over TLS also when the far end's certificate is not valid for `server_hostname`,
        by default the address)."""
        key = (name, addr)
        for known in (self._streams_in.get(key), self._streams_out.get(key)):
            if known is not None and known.open:
                return known
        if name == "TLS":
            opening = asyncio.open_connection(
                *addr,
                ssl=self.tls.client_context(),
                server_hostname=server_hostname or addr[0],
                ssl_handshake_timeout=min(timeout, HANDSHAKE_SECONDS),
            )
        else:
            opening = asyncio.open_connection(*addr)
        try:
            reader, writer = await asyncio.wait_for(opening, timeout)
        except TimeoutError:
            raise OSError(
                f"no {name} connection to {addr[0]}:{addr[1]} within {timeout:g} s"
            ) from None
        except ssl.SSLError as exc:  # a CertificateError too: no valid certificate for the name
            raise OSError(
                f"no {name} connection to {addr[0]}:{addr[1]}: {exc.reason or exc}"
            ) from None
        peer = StreamPeer(name, addr, writer)
        self._streams_out[key] = peer

        async def read() -> None:
            try:
                await read_stream(reader, writer, peer, self.deliver, self._malformed)
            finally:
                if self._streams_out.get(key) is peer:
                    del self._streams_out[key]

        self._spawn(read())
        return peer

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    # How we name ourselves -----------------------------------------------------------------

    @property
    def advertised_host(self) -> str:
        """The address we put in Contact, Via and SDP when no peer is known."""
        if self.advertised_address:
            return self.advertised_address
        return "127.0.0.1" if self.host in _WILDCARDS else self.host

    def address_for(self, peer: tuple[str, int]) -> str:
        """The address we put in Contact, Via and SDP for this peer: the configured one, the
        listening address, or (listening on all interfaces) the local address the system routes
        to that peer from, so a phone on the LAN is told the LAN address and loopback stays
        loopback."""
        if self.advertised_address or self.host not in _WILDCARDS:
            return self.advertised_host
        return _local_address_towards(peer[0])

    def port_for(self, peer: Peer) -> int:
        """Our listening port on the peer's transport."""
        return self.ports.get(peer.name, 0)

    def contact_for(self, peer: Peer, *, sips: bool = False) -> str:
        """Our Contact for requests and responses to `peer` (transport named unless UDP); a
        sips: URI when the dialog's is one (RFC 5630 §3.1.3), which implies TLS."""
        where = f"{self.address_for(peer.addr)}:{self.port_for(peer)}"
        if sips and peer.name == "TLS":
            return f"<sips:openivr@{where}>"
        transport = f";transport={peer.name.lower()}" if peer.name != "UDP" else ""
        return f"<sip:openivr@{where}{transport}>"

    def via_for(self, peer: Peer, branch: str) -> str:
        """Our Via for a request to `peer` (with rport, RFC 3581)."""
        host, port = self.address_for(peer.addr), self.port_for(peer)
        return f"SIP/2.0/{peer.name} {host}:{port};branch={branch};rport"
