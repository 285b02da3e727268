"""A call to the recording shortcode (*22): a user of the account records a prompt's message
by phone. A pure state machine like CallFlow (events in, commands out, no I/O, no clock). Who
may reach it is decided before (calls/router.py); this decides what they hear.

Rules (the engine's README repeats them):

- The caller hears the sysprompt "record_code" ("enter the prompt number, then hash") and keys
  a prompt's `record_code`, ending with '#'; a key stops the question. No key for
  `CODE_SECONDS`: what was keyed counts as entered (nothing keyed: asked again).
- A number no prompt of the account has (or none): "record_unknown", then the question again;
  after `MAX_ATTEMPTS` numbers that lead nowhere: goodbye, hang up. '*' while keying: goodbye,
  hang up.
- A known number: beep, then the caller is recorded until '#', `RECORD_MAX_SILENCE` seconds of
  silence or `RECORD_MAX_SECONDS`. The recording plays back, then "record_review" ("press 1 to
  keep, 2 to record again, star to cancel"); a key stops either.
- '1' saves it as the prompt's message (SavePromptMessage): saved → "record_saved", hang up
  (outcome prompt_recorded); refused → "no_message", hang up, the old message kept. '2' records
  again. '*' throws it away: goodbye, hang up. Another key: "invalid_option", the review again.
  No key for `REVIEW_SECONDS`: the review again; after `MAX_ATTEMPTS`: thrown away, goodbye.
- Nothing is saved unless '1' was pressed: a caller who hangs up, or a node that stops
  (EndRequested: a recording in progress is stopped), leaves the old message in place.
- The words are the sysprompt app's, in its voice, as other system messages; an account
  without one hears the built-in defaults in "en".
"""

from __future__ import annotations

from collections.abc import Callable
from math import isfinite

from openivr.engine.commands import (
    RECORD_MAX_SILENCE,
    CancelTimer,
    CollectDigits,
    DiscardRecording,
    HangUp,
    PlayPrompt,
    PlayRecorded,
    Record,
    RecorderCommand,
    SavePromptMessage,
    StartTimer,
    StopPrompt,
    StopRecording,
)
from openivr.engine.config import CallConfig, PromptRef, default_standard_prompt
from openivr.engine.events import (
    CallerHungUp,
    CallStarted,
    DigitPressed,
    EndRequested,
    PromptFinished,
    PromptSaved,
    RecorderEvent,
    RecordingFinished,
    TimerFired,
    TransferAnswered,
    TransferFailed,
)
from openivr.engine.log import LogEntry, LogKind, Outcome, OutcomeKind
from openivr.engine.vocabulary import DIGIT_SLOTS, RECORDING_SHORTCODE, STANDARD_PROMPTS

# How long the caller may think between keys of the prompt's number.
CODE_SECONDS = 8.0
# How long the review waits for 1, 2 or *.
REVIEW_SECONDS = 8.0
# Wrong numbers, or reviews without an answer, before the call ends.
MAX_ATTEMPTS = 3
# The longest message recorded by phone.
RECORD_MAX_SECONDS = 300.0
# Shorter than this there is nothing to play back.
MIN_PLAYBACK_SECONDS = 0.2
# The longest number keyed (record codes are positive integers, unique per account).
MAX_CODE_DIGITS = 9

_ASKING, _PLAYING, _STOPPING, _RECORDING, _REVIEWING, _SAVING, _ENDED = range(7)
_CODE, _REVIEW, _END = "code", "review", "end"  # what a finished play leads to

# One thing to play: a prompt and its voice, or None for the recording itself.
_Play = tuple[PromptRef, str] | None


def _nothing() -> None:
    pass


class PromptRecorder:
    """One call to the recording shortcode: feed events to `handle`, run what it returns."""

    def __init__(self, config: CallConfig, account_id: str, user_id: str) -> None:
        self._config = config
        self._account = account_id
        self.user_id = user_id
        self._rows: list[tuple[float, LogKind, str, str, str | None]] = []
        self._entries: list[LogEntry] = []
        self.outcome: Outcome | None = None
        self.prompt: PromptRef | None = None  # the prompt being recorded
        self._phase = _ASKING
        self._started = False
        self._out: list[RecorderCommand] = []
        self._now = 0.0
        self._queue: list[_Play] = []
        self._then: Callable[[], None] = _nothing
        self._play_id = 0
        self._playing = False
        self._timer_id = 0
        self._timer_on = False
        self._digits = ""
        self._wrong = 0  # numbers that led nowhere
        self._unanswered = 0  # reviews without 1, 2 or *
        self._duration = 0.0  # of the recording held
        self._held = False  # a recording is held, neither saved nor thrown away
        self._hangup_reason = ""

    # -- public view ----------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """Whether the call is over for the recorder."""
        return self._phase == _ENDED

    @property
    def log(self) -> list[LogEntry]:
        """What happened so far, oldest first."""
        for row in self._rows[len(self._entries) :]:
            self._entries.append(LogEntry(*row))
        return self._entries

    def handle(self, event: RecorderEvent) -> list[RecorderCommand]:
        """Apply one event; return the commands for the driver, in order."""
        if self._phase == _ENDED:
            return []
        if not self._started and not isinstance(event, CallStarted):
            raise ValueError(f"the call has not started; send CallStarted before {event!r}")
        if not self._now <= event.now < float("inf"):
            raise ValueError(f"event time must be finite and not go back: {event.now!r}")
        self._out = []
        self._now = event.now
        match event:
            case CallStarted():
                self._started = True
                self._log(
                    "note", f"recording by phone ({RECORDING_SHORTCODE}), user {self.user_id}"
                )
                self._out.append(CollectDigits("", "#", CODE_SECONDS))
                self._ask()
            case PromptFinished():
                if self._playing and event.play_id == self._play_id:
                    self._playing = False
                    self._next()
            case DigitPressed():
                self._key(event.digit)
            case TimerFired():
                if self._timer_on and event.timer_id == self._timer_id:
                    self._timer_on = False
                    self._timed_out()
            case RecordingFinished():
                if not (isfinite(event.duration) and event.duration >= 0):
                    raise ValueError(f"recording duration must be >= 0: {event.duration!r}")
                if self._phase == _RECORDING:
                    self._recorded(event.duration, event.reason == "hangup")
            case PromptSaved():
                if self._phase == _SAVING:
                    self._saved(event.ok)
            case CallerHungUp():
                self._log("hangup", "the caller hung up")
                self._finish("caller_hangup")
            case EndRequested():
                self._end_requested(event.reason, event.at_once)
            case TransferAnswered() | TransferFailed():
                pass  # the recorder rings nobody
        return self._out

    # -- the prompt's number ------------------------------------------------------------------

    def _ask(self) -> None:
        self._digits = ""
        self._play([self._sys("record_code")], then=self._listen_for_code)

    def _listen_for_code(self) -> None:
        self._phase = _ASKING
        self._start_timer(CODE_SECONDS, "digits")

    def _code_key(self, digit: str) -> None:
        if digit == "*":
            self._log_key(digit, "cancel")
            self._goodbye("cancelled")
        elif digit == "#":
            self._log_key(digit, "end of number")
            self._decide_code()
        elif len(self._digits) < MAX_CODE_DIGITS:
            self._log_key(digit, "number")
            self._digits += digit
            self._start_timer(CODE_SECONDS, "digits")
        else:
            self._log_key(digit, "ignored (number too long)")

    def _decide_code(self) -> None:
        self._cancel_timer()
        keyed, self._digits = self._digits, ""
        prompt = self._config.prompt_by_code(self._account, int(keyed)) if keyed else None
        if prompt is None or prompt.account_id != self._account:
            self._wrong += 1
            self._log("input", f"no prompt has number {keyed!r}" if keyed else "no number keyed")
            if self._wrong >= MAX_ATTEMPTS:
                self._play([self._sys("record_unknown")], then=lambda: self._goodbye("unknown"))
            else:
                self._play(
                    [self._sys("record_unknown"), self._sys("record_code")],
                    then=self._listen_for_code,
                )
            return
        self.prompt = prompt
        self._log("input", f"number {keyed}: prompt {prompt.name!r} ({prompt.prompt_id})")
        self._record()

    # -- recording and review -------------------------------------------------------------

    def _record(self) -> None:
        self._cancel_timer()
        self._phase = _RECORDING
        self._out.append(Record("", RECORD_MAX_SECONDS, RECORD_MAX_SILENCE))

    def _recorded(self, duration: float, hung_up: bool) -> None:
        self._duration = duration
        self._held = True
        self._log("note", f"recorded {duration:.1f} s")
        if hung_up:
            self._discard()
            self._finish("caller_hangup")
            return
        plays: list[_Play] = [None] if duration >= MIN_PLAYBACK_SECONDS else []
        self._play([*plays, self._sys("record_review")], then=self._listen_for_review)

    def _listen_for_review(self) -> None:
        self._phase = _REVIEWING
        self._start_timer(REVIEW_SECONDS, "review")

    def _review_key(self, digit: str) -> None:
        self._cancel_timer()
        if digit == "1":
            self._log_key(digit, "keep")
            assert self.prompt is not None
            self._phase = _SAVING
            self._held = False  # the driver saves it or, refused, drops it
            self._out.append(SavePromptMessage(self.prompt.prompt_id, self._duration))
        elif digit == "2":
            self._log_key(digit, "record again")
            self._discard()
            self._record()
        elif digit == "*":
            self._log_key(digit, "cancel")
            self._discard()
            self._goodbye("cancelled")
        else:
            self._log_key(digit, "invalid")
            self._play(
                [self._sys("invalid_option"), self._sys("record_review")],
                then=self._listen_for_review,
            )

    def _saved(self, ok: bool) -> None:
        assert self.prompt is not None
        if ok:
            self._log("action", f"saved as the message of {self.prompt.prompt_id}")
            self._hangup_reason = "saved"
            self._play([self._sys("record_saved")], then=lambda: self._hang_up("prompt_recorded"))
        else:
            self._log("failure", f"the recording could not be saved for {self.prompt.prompt_id}")
            self._hangup_reason = "not saved"
            self._play([self._sys("no_message")], then=self._hang_up)

    # -- keys and time --------------------------------------------------------------------

    def _key(self, digit: str) -> None:
        if digit not in DIGIT_SLOTS:
            self._log_key(digit, "ignored")
            return
        if (
            self._phase == _PLAYING
            and self._playing
            and self._then
            in (
                self._listen_for_code,
                self._listen_for_review,
            )
        ):
            # Questions take barge-in: a key stops them and counts.
            self._out.append(StopPrompt(self._play_id))
            self._playing = False
            self._queue = []
            self._phase = _ASKING if self._then == self._listen_for_code else _REVIEWING
            self._then = _nothing
        if self._phase == _ASKING:
            self._code_key(digit)
        elif self._phase == _REVIEWING:
            self._review_key(digit)
        else:
            self._log_key(digit, "ignored")

    def _timed_out(self) -> None:
        if self._phase == _ASKING:
            if self._digits:
                self._decide_code()
            else:
                self._log("timeout", "no number keyed")
                self._wrong += 1
                if self._wrong >= MAX_ATTEMPTS:
                    self._goodbye("no input")
                else:
                    self._ask()
        elif self._phase == _REVIEWING:
            self._unanswered += 1
            self._log("timeout", "no key after the review")
            if self._unanswered >= MAX_ATTEMPTS:
                self._discard()
                self._goodbye("no input")
            else:
                self._play([self._sys("record_review")], then=self._listen_for_review)

    # -- ending ---------------------------------------------------------------------------

    def _end_requested(self, reason: str, at_once: bool) -> None:
        self._log("note", f"ended by our side: {reason}")
        if self._phase == _RECORDING:
            self._out.append(StopRecording(""))
            self._phase = _STOPPING  # its RecordingFinished changes nothing any more
        if self._phase == _SAVING:
            # The driver finishes the save it started; the caller hears no more.
            at_once = True
        self._discard()
        if at_once:
            self._hang_up_now(reason)
        else:
            self._goodbye(reason)

    def _discard(self) -> None:
        if self._held:
            self._held = False
            self._out.append(DiscardRecording("", self._duration))
        self._duration = 0.0

    def _goodbye(self, reason: str) -> None:
        self._cancel_timer()
        self._hangup_reason = reason
        self._play([self._sys("goodbye")], then=self._hang_up)

    def _hang_up(self, kind: OutcomeKind = "hangup") -> None:
        self._hang_up_now(self._hangup_reason, kind)

    def _hang_up_now(self, reason: str, kind: OutcomeKind = "hangup") -> None:
        self._cancel_timer()
        if self._playing:
            self._out.append(StopPrompt(self._play_id))
            self._playing = False
        self._out.append(HangUp(reason))
        self._log("hangup", f"hung up: {reason}")
        self._finish(kind)

    def _finish(self, kind: OutcomeKind) -> None:
        self._phase = _ENDED
        self._queue = []
        self._then = _nothing
        target = self.prompt.prompt_id if self.prompt is not None else None
        self.outcome = Outcome(kind, "", target if kind == "prompt_recorded" else None)

    # -- plumbing -------------------------------------------------------------------------

    def _play(self, plays: list[_Play], then: Callable[[], None]) -> None:
        self._queue = plays
        self._then = then
        self._phase = _PLAYING
        self._next()

    def _next(self) -> None:
        while self._queue:
            item = self._queue.pop(0)
            if item is not None and not item[0].has_audio:
                continue
            self._play_id += 1
            self._playing = True
            # Everything but the closing words takes barge-in: 1, 2 or * during the playback
            # of the recording need not wait for the question.
            barge = self._then in (self._listen_for_code, self._listen_for_review)
            if item is None:
                self._out.append(PlayRecorded(self._play_id, barge))
            else:
                self._out.append(PlayPrompt(self._play_id, item[0], item[1], barge))
            return
        then, self._then = self._then, _nothing
        then()

    def _sys(self, key: str) -> tuple[PromptRef, str]:
        """A system message: the sysprompt app's, in its voice, else the built-in default."""
        app = self._config.sysprompt_app(self._account)
        if app is None or app.account_id != self._account:
            name = next(p.name for p in STANDARD_PROMPTS["sysprompt"] if p.key == key)
            return PromptRef(f"default.{key}", "", self._account, name, key, None, True), "en"
        found = self._config.standard_prompt(app.app_id, key)
        if found is None or found.account_id != self._account:
            found = default_standard_prompt(app, key)
        assert found is not None, f"{key} is not a system message"
        return found, app.voice or "en"

    def _start_timer(self, seconds: float, purpose: str) -> None:
        self._cancel_timer()
        self._timer_id += 1
        self._timer_on = True
        self._out.append(StartTimer(self._timer_id, seconds, purpose))

    def _cancel_timer(self) -> None:
        if self._timer_on:
            self._timer_on = False
            self._out.append(CancelTimer(self._timer_id))

    def _log(self, kind: LogKind, text: str) -> None:
        self._rows.append((self._now, kind, "", text, None))

    def _log_key(self, digit: str, meaning: str) -> None:
        self._rows.append((self._now, "key", "", meaning, digit))
