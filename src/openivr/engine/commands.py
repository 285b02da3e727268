"""What the engine asks the driver to do. The driver runs them in the order given.

Commands are slotted dataclasses but not frozen: a frozen one costs about a microsecond more to
build, a fifth of the engine's time per event (bench/engine). Treat them as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from openivr.engine.config import PromptRef

# How long a caller may stay silent while leaving a message.
RECORD_MAX_SILENCE = 5.0
# The key that ends a message.
RECORD_STOP_KEY = "#"


@dataclass(slots=True)
class PlayPrompt:
    """Play `prompt`; a prompt without an uploaded message plays its default in `voice`.

    With `barge_in` a key stops the prompt (the engine sends StopPrompt); without it keys are
    ignored while it plays. Answer with PromptFinished(play_id) when it has played to the end.
    """

    play_id: int
    prompt: PromptRef
    voice: str
    barge_in: bool


@dataclass(slots=True)
class StopPrompt:
    """Stop the prompt PlayPrompt(play_id) now (barge-in or hang-up); no PromptFinished needed."""

    play_id: int


@dataclass(slots=True)
class StartTimer:
    """Send TimerFired(timer_id) after `seconds` unless cancelled; `purpose` is for logs."""

    timer_id: int
    seconds: float
    purpose: str  # menu | digits


@dataclass(slots=True)
class CancelTimer:
    """Forget the timer `timer_id`."""

    timer_id: int


@dataclass(slots=True)
class CollectDigits:
    """From now on keys matter: forward every DTMF key as DigitPressed.

    `terminator` ends a multi-digit entry ('#' when the app takes extensions); informational.
    """

    app_id: str
    terminator: str | None
    interdigit_timeout: float | None


@dataclass(slots=True)
class Record:
    """Beep, then record the caller for mailbox `app_id` ("" when the recording is not a
    voicemail: a prompt recorded by phone); answer with RecordingFinished.

    Stop at `stop_key`, after `max_silence` seconds of silence, after `max_seconds`, or when the
    caller hangs up (then send RecordingFinished(reason="hangup") before or instead of
    CallerHungUp so the message keeps its exact length).
    """

    app_id: str
    max_seconds: float
    max_silence: float = RECORD_MAX_SILENCE
    stop_key: str = RECORD_STOP_KEY
    beep: bool = True


@dataclass(slots=True)
class StopRecording:
    """End the recording of mailbox `app_id` now (our side ends the call); answer with
    RecordingFinished(reason="ended"), with a length of 0 if it had not begun yet."""

    app_id: str


@dataclass(slots=True)
class KeepVoicemail:
    """Save the recording just made as a voicemail of mailbox `app_id` (and deliver it)."""

    app_id: str
    duration: float


@dataclass(slots=True)
class DiscardRecording:
    """Throw the recording just made away (shorter than the minimum message length)."""

    app_id: str
    duration: float


@dataclass(slots=True)
class Transfer:
    """Ring `target` (SIP URI or E.164 number) and bridge the caller on answer.

    Answer with TransferAnswered or TransferFailed(reason). `kind` is user | phnum | sip |
    team. A team's member is a `user` transfer with `team_id` and its place in the ringing
    (`attempt`, from 1); kind `team` rings every user of `members` at once (first answer wins:
    TransferAnswered(by=user id)). `ring_seconds` bounds the ringing (None: the driver's own
    ring time). With `skip_busy` a user already on another call of this node is not rung: the
    driver answers TransferFailed("busy") at once.
    """

    target: str
    kind: str
    user_id: str | None
    app_id: str
    ring_seconds: float | None = None
    team_id: str | None = None
    members: tuple[str, ...] = ()
    skip_busy: bool = False
    attempt: int = 0


@dataclass(slots=True)
class EnterApp:
    """The call is now handled by voice app `app_id` (for transcripts and call records)."""

    app_id: str
    app_type: str
    name: str
    hop: int


@dataclass(slots=True)
class HangUp:
    """End the call."""

    reason: str


@dataclass(slots=True)
class PlayRecorded:
    """Play the recording just made back to the caller (recording by phone); answer with
    PromptFinished(play_id). With `barge_in` a key stops it."""

    play_id: int
    barge_in: bool


@dataclass(slots=True)
class SavePromptMessage:
    """Make the recording just made prompt `prompt_id`'s message, as an uploaded WAV would be;
    answer with PromptSaved(ok)."""

    prompt_id: str
    duration: float


Command = (
    PlayPrompt
    | StopPrompt
    | StartTimer
    | CancelTimer
    | CollectDigits
    | Record
    | StopRecording
    | KeepVoicemail
    | DiscardRecording
    | Transfer
    | EnterApp
    | HangUp
)
# What a call to the recording shortcode may also ask for (engine/recorder.py).
RecorderCommand = Command | PlayRecorded | SavePromptMessage
