"""What both ways of transferring share: the target, the leg's record, and the wait for a reply.

A transfer either bridges the caller to a call we place (connect.py) or asks the caller's side
to call the target itself by REFER (refer.py); both fill in a `TransferLeg` and both wait for
the far end's next message with `ReplyWait`, unless the caller hangs up or time runs out first.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar

from openivr.engine.routing import sip_address
from openivr.sip.media import RtpStats

TargetKind = Literal["sip", "phnum", "user"]
LegStatus = Literal[
    "answered", "busy", "no_answer", "rejected", "unreachable", "no_trunk", "cancelled"
]
EndedBy = Literal["caller", "target", ""]

T = TypeVar("T")


class Ending(Protocol):
    """What a wait for the far end gives up for: a caller's call (it hangs up), a callback
    session (ended by the node)."""

    async def wait_ended(self) -> None:
        """Return once it is over."""


@dataclass(frozen=True)
class TransferTarget:
    """Where a transfer goes: a SIP URI, an E.164 number or a user (id plus fallbacks)."""

    kind: TargetKind
    value: str
    user_sip_uri: str = ""
    user_phnum: str = ""
    owner: str = ""  # whose phone this is, when a sip or phnum target stands for a user

    def __post_init__(self) -> None:
        if self.kind not in ("sip", "phnum", "user"):
            raise ValueError(f"transfer target kind {self.kind!r} is not 'sip', 'phnum' or 'user'")
        if not self.value.strip():
            raise ValueError(f"transfer target of kind {self.kind!r} has an empty value")


def leg_target(kind: str, value: str) -> str:
    """What a leg's record names as its target: `kind:value` (`user:<id>`, `phnum:+46...`),
    but a SIP address as itself (its value already is a sip:/sips: URI; never `sip:sip:...`)."""
    return sip_address(value) if kind == "sip" else f"{kind}:{value}"


@dataclass
class TransferLeg:
    """How one transfer went, for call records."""

    target: str
    uri: str
    status: LegStatus
    sip_code: int = 0
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    ended_by: EndedBy = ""
    packets_to_target: int = 0
    packets_from_target: int = 0
    media: str = ""  # the target leg's audio once answered: "RTP", or "SRTP" (encrypted)
    # RTP counters of the target leg (send intervals for pacing checks); not in to_dict().
    target_rtp: RtpStats | None = field(default=None, repr=False, compare=False)
    # Several targets rung at once (a team): whose phone answered, and how each place went
    # ({"owner", "uri", "status", "sip_code"}, in the order rung); not in to_dict().
    answered_by: str = ""
    rung: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    def answered(self, code: int) -> None:
        """The target answered (a 2xx, or a NOTIFY saying so) with `code`."""
        self.status, self.sip_code = "answered", code
        self.answered_at = datetime.now(UTC)

    def finish(self, status: LegStatus, code: int = 0, by: EndedBy = "") -> TransferLeg:
        """The transfer is over with `status` (and the SIP code that said so); returns the leg."""
        self.status = status
        self.sip_code = code
        if by:
            self.ended_by = by
        self.ended_at = datetime.now(UTC)
        return self

    def hung_up(self, by: EndedBy = "") -> TransferLeg:
        """An answered transfer ended: `by` hung up first ('' when we left); returns the leg."""
        self.ended_by = by
        self.ended_at = datetime.now(UTC)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO 8601 strings or None)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "target": self.target,
            "uri": self.uri,
            "status": self.status,
            "sip_code": self.sip_code,
            "started_at": iso(self.started_at),
            "answered_at": iso(self.answered_at),
            "ended_at": iso(self.ended_at),
            "ended_by": self.ended_by,
            "packets_to_target": self.packets_to_target,
            "packets_from_target": self.packets_from_target,
            "media": self.media,
        }


def status_for(code: int) -> LegStatus:
    """The transfer status a final SIP response code means."""
    if code in (486, 600):
        return "busy"
    if code in (408, 480, 487):
        return "no_answer"
    return "rejected"


class Interrupted(enum.Enum):
    """Why a wait for the far end's next message ended without one."""

    CALLER_LEFT = "the caller hung up"
    TIME_UP = "the transfer's time ran out"


class ReplyWait:
    """The first of: the next message in a queue, the caller hanging up, the deadline (one
    deadline for the whole wait, set when it starts). A message that arrives together with the
    hang-up is still taken."""

    def __init__(self, call: Ending, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._deadline = loop.time() + timeout
        self._ended = asyncio.ensure_future(call.wait_ended())

    async def next(self, queue: asyncio.Queue[T]) -> T | Interrupted:
        """The next message, or why there is none."""
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait(
            {getter, self._ended},
            timeout=max(0.0, self._deadline - self._loop.time()),
            return_when=asyncio.FIRST_COMPLETED,
        )
        if getter in done:
            return getter.result()
        getter.cancel()
        return Interrupted.CALLER_LEFT if self._ended in done else Interrupted.TIME_UP

    def close(self) -> None:
        """Stop watching the call."""
        if not self._ended.done():
            self._ended.cancel()

    async def __aenter__(self) -> ReplyWait:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
