"""A manual clock and a recording peer: SIP timers tested without sockets or waiting."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from openivr.sip.message import SipRequest, SipResponse, parse_message, response_to
from openivr.sip.transaction import Clock
from openivr.sip.transport import TransportName


class ManualClock(Clock):
    """Timers that run only when the test moves time on."""

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, _Handle]] = []
        self._order = itertools.count()

    def call_later(self, delay: float, callback: Callable[[], object]) -> _Handle:
        handle = _Handle(callback)
        heapq.heappush(self._queue, (self.now + delay, next(self._order), handle))
        return handle

    def advance(self, seconds: float) -> None:
        """Run every timer due within `seconds`, in order, at its own time."""
        until = self.now + seconds
        while self._queue and self._queue[0][0] <= until:
            when, _, handle = heapq.heappop(self._queue)
            self.now = when
            if not handle.cancelled:
                handle.callback()
        self.now = until

    @property
    def pending(self) -> int:
        """Timers still to run."""
        return sum(1 for _, _, h in self._queue if not h.cancelled)


@dataclass
class _Handle:
    callback: Callable[[], object]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class RecordingPeer:
    """A far end that keeps what we sent it, and when."""

    clock: ManualClock
    name: TransportName = "UDP"
    addr: tuple[str, int] = ("192.0.2.7", 5060)
    open: bool = True
    sent: list[tuple[float, bytes]] = field(default_factory=list)

    @property
    def reliable(self) -> bool:
        return self.name != "UDP"

    def send(self, data: bytes) -> None:
        self.sent.append((self.clock.now, data))

    @property
    def times(self) -> list[float]:
        return [t for t, _ in self.sent]


def request(method: str, branch: str = "z9hG4bK-1", extra: str = "") -> SipRequest:
    """A request from alice at 192.0.2.7 (call-1, CSeq 7), parsed as the server would."""
    text = (
        f"{method} sip:100@192.0.2.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.7:5060;branch={branch}\r\n"
        "From: <sip:alice@192.0.2.7>;tag=a1\r\n"
        "To: <sip:100@192.0.2.1>\r\n"
        "Call-ID: call-1\r\n"
        f"CSeq: 7 {method}\r\n" + extra + "Content-Length: 0\r\n\r\n"
    )
    parsed = parse_message(text.encode())
    assert isinstance(parsed, SipRequest)
    return parsed


def reply(to: SipRequest, status: int) -> SipResponse:
    """Our answer to it, tagged b2."""
    return response_to(to, status, to_tag="b2")
