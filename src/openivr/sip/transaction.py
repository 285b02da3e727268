"""SIP transactions (RFC 3261 §17): the retransmission timer and the table of transactions.

A transaction is one request and its responses. Over UDP, whoever waits for the other side
resends with one rule (`Retransmitter`): our requests until a response, our final error to an
INVITE until its ACK, and (for the dialog layer) our 2xx to an INVITE until its ACK. The
`TransactionTable` alone keeps the transactions in progress: the far end's, keyed by its Via
branch, so a retransmitted request gets our last response again; and ours, keyed by our branch
and method, so a response finds the request it answers. Timers run on a `Clock`, which tests
replace by a manual one.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from openivr.sip.message import MAGIC_COOKIE, Headers, SipRequest, SipResponse

if TYPE_CHECKING:
    from openivr.sip.transport import Peer

T1 = 0.5  # round-trip estimate: the first retransmission interval
T2 = 4.0  # the longest interval for everything but an INVITE's timer A
T4 = 5.0  # how long the network may keep a message: a non-2xx INVITE lingers after its ACK
TIMEOUT = 64 * T1  # timers B, F, H and J: a transaction gives up or is forgotten
TIMER_D = 32.0  # our INVITE lingers after a final error to ACK its retransmissions

# The far end's transactions: (branch, sent-by, method), or for RFC 2543 peers without a
# branch cookie, (Call-ID, From tag, CSeq number, method).
ServerKey = tuple[str, ...]


class Timer(Protocol):
    """A scheduled call that can be called off."""

    def cancel(self) -> None:
        """Do not run it."""


class Clock:
    """Runs transaction timers on the event loop (tests drive a manual clock instead)."""

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run `callback` after `delay` seconds."""
        return asyncio.get_running_loop().call_later(delay, callback)


def _cancel(*timers: Timer | None) -> None:
    for timer in timers:
        if timer is not None:
            timer.cancel()


class Retransmitter:
    """Resends one message at T1, 2·T1, 4·T1 … until stopped; the interval stops growing at T2
    except for an INVITE's timer A (`capped=False`). Over a reliable transport it resends
    nothing: the transport itself does."""

    def __init__(self, peer: Peer, data: bytes, clock: Clock, *, capped: bool = True) -> None:
        self.peer = peer
        self.data = data
        self.clock = clock
        self.capped = capped
        self._timer: Timer | None = None

    @property
    def running(self) -> bool:
        """Whether resends are scheduled."""
        return self._timer is not None

    def start(self) -> None:
        """Resend after T1, then at growing intervals (the first send is the caller's)."""
        self.stop()
        if not self.peer.reliable:
            self._schedule(T1)

    def stop(self) -> None:
        """Resend no more."""
        _cancel(self._timer)
        self._timer = None

    def _schedule(self, interval: float) -> None:
        self._timer = self.clock.call_later(interval, functools.partial(self._fire, interval))

    def _fire(self, interval: float) -> None:
        self.peer.send(self.data)
        self._schedule(min(interval * 2, T2) if self.capped else interval * 2)


# The far end's requests ----------------------------------------------------------------------


class ServerTransaction:
    """A request from the far end: absorbs its retransmissions by resending our last response
    (RFC 3261 §17.2); a final error to an INVITE is resent until the ACK (timer G)."""

    def __init__(
        self, table: TransactionTable, key: ServerKey, request: SipRequest, peer: Peer
    ) -> None:
        self.table = table
        self.key = key
        self.request = request
        self.peer = peer
        self.last_response: bytes | None = None
        self.final_status = 0
        self._resend: Retransmitter | None = None
        self._expiry: Timer | None = None
        table.register(self)

    @property
    def is_invite(self) -> bool:
        """Whether this is an INVITE transaction (the only kind whose errors are ACKed)."""
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
        if self.is_invite and response.status >= 300:
            self._resend = Retransmitter(self.peer, data, self.table.clock)  # timer G until ACK
            self._resend.start()
        # Timer H for INVITE errors, J for the rest: keep absorbing retransmits a while.
        self._expiry = self.table.clock.call_later(TIMEOUT, self.terminate)

    def resend(self) -> None:
        """A retransmitted request arrived: repeat our last response."""
        if self.last_response is not None:
            self.peer.send(self.last_response)

    def acked(self) -> None:
        """ACK for a non-2xx final: stop retransmitting, linger for timer I."""
        if self._resend is not None:
            self._resend.stop()
        _cancel(self._expiry)
        self._expiry = self.table.clock.call_later(T4, self.terminate)

    def terminate(self) -> None:
        """Forget the transaction."""
        if self._resend is not None:
            self._resend.stop()
        _cancel(self._expiry)
        self.table.forget(self)


# Our requests ------------------------------------------------------------------------------


class ResponseSink(Protocol):
    """A request of ours waiting for responses (keyed by its branch and method)."""

    @property
    def key(self) -> tuple[str, str]:
        """Our Via branch and the method."""

    def receive(self, response: SipResponse) -> None:
        """A response matched this transaction."""

    def finish(self, status: int) -> None:
        """End the transaction (status 0 when the server stops)."""


class ClientTransaction:
    """A request we send (BYE, REFER, CANCEL): resent (timer E) until a final response, or
    given up with 408 at timer F."""

    def __init__(
        self,
        table: TransactionTable,
        branch: str,
        data: bytes,
        peer: Peer,
        method: str = "BYE",
    ) -> None:
        self.table = table
        self.branch = branch
        self.method = method
        self.data = data
        self.peer = peer
        self.final_status = 0
        self.response: SipResponse | None = None
        self.done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._resend = Retransmitter(peer, data, table.clock)
        self._timeout: Timer | None = None

    @property
    def key(self) -> tuple[str, str]:
        """Our Via branch and the method."""
        return (self.branch, self.method)

    def start(self) -> None:
        """Send the request and wait for its final response."""
        self.table.register(self)
        self.peer.send(self.data)
        self._resend.start()
        self._timeout = self.table.clock.call_later(TIMEOUT, functools.partial(self.finish, 408))

    def receive(self, response: SipResponse) -> None:
        """A response arrived: a final one ends the transaction."""
        if response.status >= 200:
            self.response = response
            self.finish(response.status)

    def finish(self, status: int) -> None:
        """Stop the timers and report the final status."""
        self._resend.stop()
        _cancel(self._timeout)
        self.final_status = status
        if not self.done.done():
            self.done.set_result(status)
        self.table.forget(self)


class InviteClientTransaction:
    """One INVITE of ours on the wire (RFC 3261 §17.1.1): resent until any response (timer A,
    uncapped), given up at timer B; a final error is ACKed here, the 2xx by the dialog.

    `on_response` hears every response worth telling (the first final only), and None when
    timer B fired: no response at all, the far end is unreachable."""

    def __init__(
        self,
        table: TransactionTable,
        branch: str,
        request: SipRequest,
        peer: Peer,
        on_response: Callable[[SipResponse | None], None],
    ) -> None:
        self.table = table
        self.branch = branch
        self.request = request
        self.peer = peer
        self.on_response = on_response
        self.final: SipResponse | None = None
        self._ack: bytes | None = None
        data = request.serialise()
        self._data = data
        self._resend = Retransmitter(peer, data, table.clock, capped=False)
        self._timeout: Timer | None = None

    @property
    def key(self) -> tuple[str, str]:
        """Our Via branch and INVITE."""
        return (self.branch, "INVITE")

    def start(self) -> None:
        """Send the INVITE."""
        self.table.register(self)
        self.peer.send(self._data)
        self._resend.start()  # timer A: over TCP the transport retransmits
        self._timeout = self.table.clock.call_later(TIMEOUT, self._timer_b)

    def _timer_b(self) -> None:
        self.finish(408)
        self.on_response(None)

    def receive(self, response: SipResponse) -> None:
        """A response to this INVITE (server dispatch)."""
        self._resend.stop()
        if response.status < 200:
            if self._timeout is not None and response.status >= 100:
                self._timeout.cancel()  # timer B only runs in the Calling state
                self._timeout = None
            if self.final is None:
                self.on_response(response)
            return
        if response.status < 300:
            self.finish(0)  # the dialog ACKs 2xx, and their retransmissions
            self.on_response(response)
            return
        if self._ack is None:
            self._ack = self._build_ack(response)
        self.peer.send(self._ack)  # also for retransmitted finals
        if self.final is None:
            self.final = response
            _cancel(self._timeout)
            # Timer D: linger to absorb retransmissions of the final response.
            self._timeout = self.table.clock.call_later(TIMER_D, functools.partial(self.finish, 0))
            self.on_response(response)

    def _same_branch(self, method: str, to: str) -> SipRequest:
        # ACK for an error and CANCEL share the INVITE's Via, From, Call-ID, CSeq number and
        # route (RFC 3261 §17.1.1.3, §9.1).
        headers = Headers()
        headers.add("Via", self.request.headers.get("Via") or "")
        headers.add("Max-Forwards", "70")
        headers.add("From", self.request.headers.get("From") or "")
        headers.add("To", to)
        headers.add("Call-ID", self.request.call_id)
        headers.add("CSeq", f"{self.request.cseq.number} {method}")
        for hop in self.request.headers.get_all("Route"):
            headers.add("Route", hop)
        return SipRequest(headers, b"", method=method, uri=self.request.uri)

    def _build_ack(self, response: SipResponse) -> bytes:
        return self._same_branch("ACK", response.headers.get("To") or "").serialise()

    def cancel_request(self) -> SipRequest:
        """The CANCEL for this INVITE (same branch, RFC 3261 §9.1)."""
        return self._same_branch("CANCEL", self.request.headers.get("To") or "")

    def finish(self, status: int) -> None:
        """Forget the transaction."""
        self._resend.stop()
        _cancel(self._timeout)
        self._timeout = None
        self.table.forget(self)


# The table ---------------------------------------------------------------------------------


def server_key(request: SipRequest, method: str) -> ServerKey:
    """The key of the far end's transaction a request belongs to (ACK and CANCEL name the
    INVITE's by passing method='INVITE')."""
    via = request.vias[0]
    if via.branch.startswith(MAGIC_COOKIE):
        return (via.branch, f"{via.host}:{via.port or 5060}", method)
    # RFC 2543 peers: fall back to the dialog identifiers and CSeq.
    return (request.call_id, request.from_.tag or "", str(request.cseq.number), method)


class TransactionTable:
    """The transactions in progress, both ways; transactions register and forget themselves."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self._server: dict[ServerKey, ServerTransaction] = {}
        self._client: dict[tuple[str, str], ResponseSink] = {}

    def register(self, tx: ServerTransaction | ResponseSink) -> None:
        """Keep a transaction until it forgets itself."""
        if isinstance(tx, ServerTransaction):
            self._server[tx.key] = tx
        else:
            self._client[tx.key] = tx

    def forget(self, tx: ServerTransaction | ResponseSink) -> None:
        """Drop a transaction (a newer one under the same key stays)."""
        if isinstance(tx, ServerTransaction):
            if self._server.get(tx.key) is tx:
                del self._server[tx.key]
        elif self._client.get(tx.key) is tx:
            del self._client[tx.key]

    def server(self, key: ServerKey) -> ServerTransaction | None:
        """The far end's transaction under `key`, if it is still kept."""
        return self._server.get(key)

    def matching(self, response: SipResponse) -> ResponseSink | None:
        """Our request a response answers: the top Via's branch and the CSeq method."""
        vias = response.vias
        return self._client.get((vias[0].branch, response.cseq.method)) if vias else None

    @property
    def requests_in_flight(self) -> int:
        """Requests of ours still waiting for a final response (or lingering after one)."""
        return len(self._client)

    def close(self) -> None:
        """End every transaction (the server stops): ours report status 0."""
        for tx in list(self._server.values()):
            tx.terminate()
        for sink in list(self._client.values()):
            sink.finish(0)
