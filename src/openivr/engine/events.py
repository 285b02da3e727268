"""What happens to a call, as the driver (SIP server or simulator) tells the engine.

Every event carries `now`, the driver's clock in seconds; the engine has no clock of its own.
Like commands, events are slotted, not frozen (cheaper to build); treat them as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

# Why a recording ended (RecordingFinished.reason); "ended": stopped by StopRecording.
RecordingEnd = Literal["stop_key", "silence", "max_length", "hangup", "ended"]
RECORDING_END_REASONS: tuple[RecordingEnd, ...] = get_args(RecordingEnd)
# Why a transfer failed (TransferFailed.reason).
TransferFailure = Literal["busy", "no_answer", "unreachable"]
TRANSFER_FAILURES: tuple[TransferFailure, ...] = get_args(TransferFailure)


@dataclass(slots=True)
class CallStarted:
    """The call was answered: `caller` and `dialed` as the driver knows them.

    `at` is the wall-clock instant of `now` (an aware datetime) from the driver's clock or the
    simulator's chosen time; opening hours are decided from it. None: unknown (always open).
    """

    now: float
    caller: str = ""
    dialed: str = ""
    at: datetime | None = None


@dataclass(slots=True)
class PromptFinished:
    """The prompt started by PlayPrompt(play_id) played to its end."""

    now: float
    play_id: int


@dataclass(slots=True)
class DigitPressed:
    """The caller pressed a key: 0-9, * or #."""

    now: float
    digit: str


@dataclass(slots=True)
class TimerFired:
    """The timer started by StartTimer(timer_id) ran out."""

    now: float
    timer_id: int


@dataclass(slots=True)
class RecordingFinished:
    """The recording asked for by Record ended; `duration` is the length of the kept audio."""

    now: float
    duration: float
    reason: RecordingEnd


@dataclass(slots=True)
class TransferAnswered:
    """The transfer target answered; the call is bridged and the engine's work is done.

    `by` is the member who answered when a team's phones rang at once (its user id).
    """

    now: float
    by: str = ""


@dataclass(slots=True)
class TransferFailed:
    """The transfer target could not be reached."""

    now: float
    reason: TransferFailure


@dataclass(slots=True)
class CallerHungUp:
    """The caller hung up."""

    now: float


@dataclass(slots=True)
class EndRequested:
    """Our side must end the call (the node is stopping, or the driver failed): `reason` is
    said in the record. With `at_once` there is no time for a last prompt."""

    now: float
    reason: str
    at_once: bool = False


@dataclass(slots=True)
class PromptSaved:
    """The recording SavePromptMessage asked for was saved as the prompt's message (`ok`), or
    could not be (the audio was refused or the store failed; the old message stays)."""

    now: float
    ok: bool


Event = (
    CallStarted
    | PromptFinished
    | DigitPressed
    | TimerFired
    | RecordingFinished
    | TransferAnswered
    | TransferFailed
    | CallerHungUp
    | EndRequested
)
# What a call to the recording shortcode may also be told (engine/recorder.py).
RecorderEvent = Event | PromptSaved
