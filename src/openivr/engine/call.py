"""One call's flow through the voice apps: a pure, deterministic state machine.

`CallFlow.handle(event)` takes an event (see events.py) and returns the commands (see commands.py)
the driver must run, in order. The call keeps no clock: time comes in with each event.

Longer than our other modules on purpose: every rule of a call lives here and nowhere else
(ARCHITECTURE.md), in one state machine whose handlers share the call's state. What is not a
rule sits beside it: the log and outcome in log.py, where a transfer rings in routing.py, the
words of a voice app in vocabulary.py.

Rules worth knowing (the README of the engine repeats them for users):

- Menu prompts (welcome, menu, and the system messages said inside a menu) take barge-in: a
  key stops them and counts. Keys during other prompts (announcements, please-wait, mailbox
  greeting, goodbye) are ignored, except before the call's first menu (type-ahead): keys that
  come during prompts before a menu takes keys are kept, at most MAX_TYPEAHEAD, and the first
  menu takes them at once instead of playing its welcome and menu.
- Without get_extension a key is decided at once. With get_extension, digits are collected
  until '#' or until `interdigit_timeout` passes without a key; then a single configured menu
  digit runs its menu entry, else a user's extension calls that user, else it is invalid. So a
  '1' waits `interdigit_timeout` even when digit_1 is configured (the caller may be dialling
  extension 101); '#' right after the '1' skips the wait. '*' or '#' pressed first are menu keys
  (digit_star, digit_hash) decided at once.
- `max_retries` bounds how often the menu repeats after no key or a wrong key (the menu plays
  at most 1 + max_retries times in a row without a valid key). Past it, no key runs the
  `timeout` entry once (a second time, or without one: sysprompt goodbye and hang up); wrong
  keys end with goodbye and hang up. A valid key resets the count.
- Before a transfer from an ivr app its please_wait prompt plays (no barge-in).
- Where a transfer goes is `route_transfer` (routing.py), which real calls, the simulator and validate all
  ask with the facts of the moment (`Reachability`: trunk, registered phones): a user rings
  their registered phones, else their sip_uri, else their phnum through the trunk; a number
  needs the trunk. `call` to `other` takes a number or a SIP address; an address that is an app's
  own `sip_address` enters that app like `connect` (nothing leaves the node).
- A failure (transfer busy/no answer/unreachable, a reference that no longer resolves) plays
  sysprompt "unavailable"; a menu then plays again; an
  announcement runs its menu `timeout` entry once if set (never when that entry is what
  failed), else hangs up.
- `connect` may chain at most `max_hops` (10) times per call; past that: unavailable, hang up.
- A mailbox holding `max_messages` plays unavailable and hangs up. A message shorter than
  1 s is discarded (the caller hears sysprompt "no_message", not the goodbye); one cut by the
  caller's hang-up is kept.
- When our side must end a call (EndRequested: the node stops, the driver failed), a message
  being recorded is kept as if the caller had hung up; with time for it the caller then hears
  the mailbox goodbye (or "no_message"), elsewhere the sysprompt goodbye; a transfer that is
  ringing may still be answered. With `at_once` the call ends without a word.
- An IVR with `open_hours` decides on entering whether its schedule is open at the call's
  instant (`CallStarted.at` plus the seconds since; engine/hours.py says how). Closed: its
  `closed_action` runs instead of the menu or announcement, or without one the sysprompt
  "closed" plays and the call ends. While closed, a failure never returns to the menu:
  unavailable, hang up.
- A team (`call` to `csg`) plays please_wait (from an ivr), then rings: `all` every reachable
  member at once for min(ring_seconds, max_seconds); `order` each member once in turn,
  ring_seconds each, within max_seconds from the first ring; `rotate` like order, starting after
  the member who answered the team's last call. Members on another call of this node are skipped
  (the driver answers busy at once); members `route_transfer` cannot reach now fail at once
  (unreachable), without ring time. Nobody answered: sysprompt "all_busy" and the team's `no_answer` action, or without one the
  failure path (unavailable, back to the menu).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import isfinite
from typing import Any

from openivr.engine.commands import (
    CancelTimer,
    CollectDigits,
    Command,
    DiscardRecording,
    EnterApp,
    HangUp,
    KeepVoicemail,
    PlayPrompt,
    Record,
    StartTimer,
    StopPrompt,
    StopRecording,
    Transfer,
)
from openivr.engine.config import (
    AppConfig,
    CallConfig,
    MenuAction,
    PromptRef,
    TeamConfig,
    UserConfig,
    default_standard_prompt,
)
from openivr.engine.events import (
    RECORDING_END_REASONS,
    TRANSFER_FAILURES,
    CallerHungUp,
    CallStarted,
    DigitPressed,
    EndRequested,
    Event,
    PromptFinished,
    RecordingFinished,
    TimerFired,
    TransferAnswered,
    TransferFailed,
)
from openivr.engine.hours import Openness, open_at
from openivr.engine.log import LogEntry, LogKind, Outcome, OutcomeKind, describe
from openivr.engine.routing import is_number, local_app, sip_address
from openivr.engine.vocabulary import DIGIT_SLOTS, STANDARD_PROMPTS

MAX_HOPS = 10
MIN_MESSAGE_SECONDS = 1.0
# Keys kept before the call's first menu takes keys (type-ahead): an extension of 6 digits and
# its '#', with room to spare; more are ignored.
MAX_TYPEAHEAD = 8
# DTMF events a keypad can send that no menu uses (RFC 4733 A-D); ignored, not an error.
_UNUSED_DTMF = frozenset("ABCDabcd")

_INFINITY = float("inf")
_IDLE, _PLAYING, _LISTENING, _RECORDING, _TRANSFERRING, _ENDED = range(6)

Play = tuple[PromptRef, str]  # a prompt and the voice its default recording speaks in


class CallFlowError(RuntimeError):
    """An event that makes no sense in the call's state (a driver bug)."""


def _nothing() -> None:
    pass


@dataclass(frozen=True, slots=True)
class HoursDecision:
    """An IVR's opening hours decided on entering it: which app, which schedule, the result."""

    app_id: str
    schedule_id: str
    result: Openness


@dataclass(slots=True)
class _TeamRing:
    """A team being rung: its members in ringing order and how far the ringing got."""

    team: TeamConfig
    members: list[UserConfig] = field(default_factory=list)
    next: int = 0
    started: float | None = None


class CallFlow:
    """The state machine of one call: feed events to `handle`, run the commands it returns."""

    def __init__(
        self,
        config: CallConfig,
        app_id: str,
        *,
        account_id: str | None = None,
        max_hops: int = MAX_HOPS,
        team_id: str | None = None,
    ) -> None:
        self._config = config
        self._entry_app_id = app_id
        self._entry_team_id = team_id  # a number connected straight to a team: no app at all
        self._account = account_id
        self._max_hops = max_hops
        # Rows, not LogEntry objects: building frozen dataclasses on the hot path costs more
        # than the rest of an event; `log` turns new rows into entries when someone reads it.
        self._rows: list[tuple[float, LogKind, str, str, str | None]] = []
        self._entries: list[LogEntry] = []
        self.outcome: Outcome | None = None
        self.caller = ""
        self.dialed = ""
        self._phase = _IDLE
        self._out: list[Command] = []
        self._now = 0.0
        self._app: AppConfig | None = None
        self._hops = -1  # the entry app is hop 0
        self._queue: list[Play] = []
        self._barge = False
        self._then: Callable[[], None] = _nothing
        self._play_id = 0
        self._playing = False
        self._timer_id = 0
        self._timer_purpose: str | None = None  # None: no timer running
        self._digits = ""
        # Keys pressed before the first menu could take them, kept for it; None once a menu
        # has taken keys (later keys during prompts without barge-in are ignored).
        self._typeahead: list[str] | None = []
        self._collecting_in = ""  # app whose keys CollectDigits was sent for
        self._attempts = 0
        self._timeout_used = False
        self._origin = ""
        self._record_started = 0.0
        self._voicemail: float | None = None
        self._transfer: Transfer | None = None
        self._hangup_reason = ""
        self._end_reason: str | None = None  # set once our side asked to end the call
        self._end_at_once = False
        self._sys: AppConfig | None = None
        self._sys_loaded = False
        self._standard: dict[tuple[str, str], PromptRef] = {}
        self._started_at: datetime | None = None
        self._team: _TeamRing | None = None
        self._closed = False  # the current IVR is outside its opening hours
        self.hours: list[HoursDecision] = []  # opening hours decided, in order

    # -- public view ----------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """Whether the engine is done with the call (hung up, bridged, or caller gone)."""
        return self._phase == _ENDED

    @property
    def log(self) -> list[LogEntry]:
        """What happened so far, oldest first: apps entered, keys and how they were understood."""
        entries = self._entries
        for row in self._rows[len(entries) :]:
            entries.append(LogEntry(*row))
        return entries

    @property
    def account_id(self) -> str:
        """The account the call runs in ("" until known)."""
        return self._account or ""

    @property
    def app_id(self) -> str:
        """The voice app handling the call now."""
        return self._app.app_id if self._app is not None else self._entry_app_id

    @property
    def hops(self) -> int:
        """How many `connect` hops the call has made."""
        return max(self._hops, 0)

    def handle(self, event: Event) -> list[Command]:
        """Apply one event; return the commands for the driver, in order."""
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"not a call event: {event!r}")
        if self._phase == _ENDED:
            return []
        if self._phase == _IDLE and type(event) is not CallStarted:
            raise CallFlowError(f"the call has not started; send CallStarted before {event!r}")
        now = event.now
        if not self._now <= now < _INFINITY:  # also refuses NaN
            raise ValueError(f"event time must be finite and not go back: {now!r} < {self._now}")
        self._out = []
        self._now = now
        handler(self, event)
        return self._out

    # -- events ---------------------------------------------------------------------------

    def _on_started(self, event: CallStarted) -> None:
        self.caller = event.caller
        self.dialed = event.dialed
        self._started_at = event.at
        if self._entry_team_id is not None:
            if not self._account:
                self._entry_failed(f"team {self._entry_team_id}: the call has no account")
            else:
                self._origin = "team"
                self._call_team(self._entry_team_id)
            return
        app = self._config.app(self._entry_app_id)
        if self._account is None and app is not None:
            self._account = app.account_id
        if app is None or app.account_id != self._account:
            self._entry_failed(f"app {self._entry_app_id} not found")
            return
        self._enter_app(app)

    def _on_prompt_finished(self, event: PromptFinished) -> None:
        if self._playing and event.play_id == self._play_id:
            self._playing = False
            self._next_prompt()

    def _on_digit(self, event: DigitPressed) -> None:
        digit = event.digit
        if digit not in DIGIT_SLOTS:
            if digit in _UNUSED_DTMF:
                self._log_key(digit, "ignored")
                return
            raise ValueError(f"not a keypad key: {digit!r}; expected 0-9, * or #")
        kept = self._typeahead
        if self._taking_keys():
            self._menu_key(digit)
        elif kept is None or self._phase != _PLAYING:  # kept only from prompts, not rings
            self._log_key(digit, "ignored")
        elif len(kept) < MAX_TYPEAHEAD:
            kept.append(digit)
            self._log_key(digit, "kept for the next menu")
        else:
            self._log_key(digit, f"ignored ({MAX_TYPEAHEAD} keys kept already)")

    def _taking_keys(self) -> bool:
        """Whether a key now is a menu key: the menu listens, or a barge-in prompt of it plays."""
        return self._phase == _LISTENING or (
            self._phase == _PLAYING and self._barge and self._playing
        )

    def _on_timer(self, event: TimerFired) -> None:
        if self._timer_purpose is None or event.timer_id != self._timer_id:
            return  # a timer cancelled while its TimerFired was on the way
        purpose = self._timer_purpose
        self._timer_purpose = None
        if purpose == "digits":
            self._decide_entry(None)
        else:
            self._no_input()

    def _on_recording_finished(self, event: RecordingFinished) -> None:
        if event.reason not in RECORDING_END_REASONS:
            raise ValueError(
                f"recording end reason {event.reason!r}; expected one of "
                + ", ".join(RECORDING_END_REASONS)
            )
        if not (isfinite(event.duration) and event.duration >= 0):
            raise ValueError(f"recording duration must be >= 0 seconds: {event.duration!r}")
        if self._phase == _RECORDING:
            self._recorded(event.duration, event.reason)

    def _on_transfer_answered(self, event: TransferAnswered) -> None:
        transfer = self._transfer
        if self._phase != _TRANSFERRING or transfer is None:
            return
        target = transfer.target
        if transfer.team_id is None:
            self._log("transfer", f"{target} answered")
        else:
            member_id = event.by if transfer.kind == "team" else transfer.user_id
            member = self._config.user(self.account_id, member_id) if member_id else None
            if member is not None and member.account_id == self._account:
                target = member.call_target or target
                who = f"{member.name or member.user_id} ({member.user_id})"
            else:
                who = member_id or "a member"
            self._log("transfer", f"{who} answered")
            self._team = None
        self._finish("transferred", target=target)

    def _on_transfer_failed(self, event: TransferFailed) -> None:
        if event.reason not in TRANSFER_FAILURES:
            raise ValueError(
                f"transfer failure {event.reason!r}; expected one of "
                + ", ".join(TRANSFER_FAILURES)
            )
        if self._phase != _TRANSFERRING or self._transfer is None:
            return
        if self._team is not None:
            self._log("transfer", f"{self._ringing_whom()}: {event.reason.replace('_', ' ')}")
            if self._end_reason is None:
                self._ring_team()
                return
            self._team = None  # the call is being ended: no next member
        self._phase = _PLAYING
        self._fail(f"transfer to {self._transfer.target} failed: {event.reason}")

    def _on_end_requested(self, event: EndRequested) -> None:
        first = self._end_reason is None
        if not first and (self._end_at_once or not event.at_once):
            return  # nothing new: already ending this way
        if first:
            self._end_reason = event.reason or "ended by us"
            self._log("note", f"our side ends the call: {self._end_reason}")
        self._end_at_once = event.at_once
        phase = self._phase
        if phase == _RECORDING:
            if first:  # the message is kept when RecordingFinished reports its length
                self._out.append(StopRecording(self._current().app_id))
            return
        if phase == _TRANSFERRING and not event.at_once:
            return  # the target may still answer; a failure now says goodbye (see _fail)
        if phase == _PLAYING and self._then == self._hang_up and not event.at_once:
            return  # already saying the last words before hanging up
        if self._playing:
            self._out.append(StopPrompt(self._play_id))
            self._playing = False
        self._cancel_timer()
        self._hangup_reason = self._end_reason or "ended by us"
        if event.at_once or self._app is None:
            self._queue = []
            self._hang_up()
        else:
            self._play([self._sys_prompt("goodbye")], False, self._hang_up)

    def _on_hangup(self, event: CallerHungUp) -> None:
        if self._phase == _RECORDING:
            # The driver did not say how long the message is: it began when Record was sent.
            self._recorded(self._now - self._record_started, "hangup")
            return
        if self._playing:
            self._out.append(StopPrompt(self._play_id))
            self._playing = False
        self._cancel_timer()
        self._log("hangup", "caller hung up")
        self._finish("caller_hangup")

    # -- apps -----------------------------------------------------------------------------

    def _enter_app(self, app: AppConfig) -> None:
        self._hops += 1
        if self._hops > self._max_hops:
            self._log("failure", f"more than {self._max_hops} connects: stopped a connect loop")
            self._hangup_reason = "connect loop"
            self._play([self._sys_prompt("unavailable")], False, self._hang_up)
            return
        self._app = app
        self._attempts = 0
        self._timeout_used = False
        self._digits = ""
        self._origin = ""
        self._closed = False
        self._out.append(EnterApp(app.app_id, app.app_type, app.name, self._hops))
        self._log("app", f"entered {app.app_type} app {app.name!r} ({app.app_id})")
        if app.app_type == "mailbox":
            self._enter_mailbox(app)
        elif app.app_type != "ivr":
            self._fail(f"a {app.app_type} app cannot take calls")
        elif app.open_hours is not None and not self._open_now(app):
            self._closed_now(app)
        elif app.play_menu:
            self._present_menu(app.play_welcome)
        else:
            self._announce()

    # -- opening hours --------------------------------------------------------------------

    def _open_now(self, app: AppConfig) -> bool:
        """Whether the app's schedule is open at this moment of the call (logged either way)."""
        hours = app.open_hours
        assert hours is not None
        schedule = self._config.schedule(self.account_id, hours.schedule_id)
        if schedule is None or schedule.account_id != self._account:
            self._log("failure", f"schedule {hours.schedule_id} not found: treated as open")
            return True
        if self._started_at is None:
            self._log("hours", f"schedule {schedule.name!r}: time of the call unknown, open")
            return True
        result = open_at(schedule, self._started_at + timedelta(seconds=self._now))
        self.hours.append(HoursDecision(app.app_id, schedule.schedule_id, result))
        self._log("hours", f"schedule {schedule.name!r}: {result.describe()}")
        return result.open

    def _closed_now(self, app: AppConfig) -> None:
        self._closed = True
        assert app.open_hours is not None
        closed = app.open_hours.closed_action
        if closed.in_use:
            self._log("action", f"closed → {describe(closed)}")
            self._run(closed, "closed")
            return
        self._hangup_reason = "closed"
        self._play([self._sys_prompt("closed")], False, self._hang_up)

    def _entry_failed(self, reason: str) -> None:
        self._log("failure", reason)
        self._hangup_reason = "no such app"
        self._play([self._sys_prompt("unavailable")], False, self._hang_up)

    # -- menus ----------------------------------------------------------------------------

    def _present_menu(self, welcome: bool) -> None:
        app = self._current()
        self._digits = ""
        if self._collecting_in != app.app_id:
            self._collecting_in = app.app_id
            ext = app.get_extension
            self._out.append(
                CollectDigits(
                    app.app_id, "#" if ext else None, app.interdigit_timeout if ext else None
                )
            )
        kept, self._typeahead = self._typeahead, None
        if kept:
            # The caller chose before the menu could ask: no welcome, no menu prompt.
            self._log("note", f"keys pressed before the menu, taken now: {''.join(kept)}")
            self._phase = _LISTENING
            for digit in kept:
                if self._taking_keys():
                    self._menu_key(digit)
                elif self._phase != _ENDED:
                    self._log_key(digit, "ignored (kept before the menu; the call went on)")
            return
        plays = [self._app_prompt(app, "menu")]
        if welcome:
            plays.insert(0, self._app_prompt(app, "welcome"))
        self._play(plays, True, self._listen)

    def _menu_again(self) -> None:
        self._present_menu(False)

    def _listen(self) -> None:
        self._phase = _LISTENING
        self._start_timer(self._current().menu_timeout, "menu")

    def _menu_key(self, digit: str) -> None:
        if self._playing:
            self._out.append(StopPrompt(self._play_id))
            self._playing = False
            self._queue = []
            self._then = _nothing
        self._cancel_timer()
        self._phase = _LISTENING
        app = self._current()
        if app.get_extension and (self._digits or digit not in "*#"):
            if digit == "#" or digit == "*":
                if digit == "*":
                    self._digits += digit
                self._decide_entry(digit)
                return
            self._digits += digit
            self._log_key(digit, f"collecting {self._digits}")
            self._start_timer(app.interdigit_timeout, "digits")
            return
        action = app.action(DIGIT_SLOTS[digit])
        if action.in_use:
            self._log_key(digit, f"menu option {digit} → {describe(action)}")
            self._run_chosen(action, DIGIT_SLOTS[digit])
        else:
            self._log_key(digit, "invalid")
            self._invalid()

    def _decide_entry(self, key: str | None) -> None:
        """Decide what the collected digits mean (after '#', '*' or the interdigit timeout)."""
        app = self._current()
        entry = self._digits
        self._digits = ""
        user: UserConfig | None = None
        action = app.action(DIGIT_SLOTS[entry]) if len(entry) == 1 else None
        if action is not None and action.in_use:
            meaning = f"menu option {entry} → {describe(action)}"
        else:
            action = None
            user = self._config.user_by_extension(self.account_id, entry)
            if user is not None and user.account_id != self._account:
                user = None
            meaning = (
                f"extension {entry} → call user {user.user_id}"
                if user is not None
                else f"invalid entry {entry}"
            )
        if key is None:
            self._log("input", f"{entry} (no more keys in {app.interdigit_timeout:g} s): {meaning}")
        else:
            self._log_key(key, f"end of entry {entry}: {meaning}")
        if action is not None:
            self._run_chosen(action, DIGIT_SLOTS[entry])
        elif user is not None:
            self._valid()
            self._origin = "extension"
            self._call_user(user)
        else:
            self._invalid()

    def _run_chosen(self, action: MenuAction, slot: str) -> None:
        self._attempts = 0
        self._timeout_used = False
        self._run(action, slot)

    def _valid(self) -> None:
        self._attempts = 0
        self._timeout_used = False

    def _invalid(self) -> None:
        app = self._current()
        fallback = app.action("invalid")
        if fallback.in_use:
            self._log("action", f"invalid → {describe(fallback)}")
            self._run(fallback, "invalid")
            return
        self._attempts += 1
        if self._attempts > app.max_retries:
            self._log("note", f"{self._attempts} attempts without a valid key")
            self._goodbye("too many invalid keys")
            return
        self._play(
            [self._sys_prompt("invalid_option"), self._app_prompt(app, "menu")], True, self._listen
        )

    def _no_input(self) -> None:
        app = self._current()
        self._log("timeout", f"no key within {app.menu_timeout:g} s")
        self._attempts += 1
        if self._attempts <= app.max_retries:
            self._play(
                [self._sys_prompt("no_input"), self._app_prompt(app, "menu")], True, self._listen
            )
            return
        fallback = app.action("timeout")
        if fallback.in_use and not self._timeout_used:
            self._timeout_used = True
            self._log("action", f"timeout → {describe(fallback)}")
            self._run(fallback, "timeout")
            return
        self._goodbye("no input")

    # -- announcements --------------------------------------------------------------------

    def _announce(self) -> None:
        app = self._current()
        plays = [self._app_prompt(app, "welcome")] if app.play_welcome else []
        self._play(plays, False, self._final_action)

    def _final_action(self) -> None:
        final = self._current().final_action
        if not final.in_use:
            self._hangup_reason = "announcement finished"
            self._hang_up()
            return
        self._log("action", f"final action → {describe(final)}")
        self._run(final, "final_action")

    # -- actions --------------------------------------------------------------------------

    def _run(self, action: MenuAction, origin: str) -> None:
        self._origin = origin
        kind = action.action
        if kind == "call":
            self._call(action)
        elif kind == "connect":
            self._connect(action)
        elif kind == "play":
            self._play_action(action)
        elif kind == "hangup":
            self._hangup_reason = "hangup action"
            self._hang_up()
        elif kind == "repeat":
            self._repeat()
        elif kind == "":
            self._goodbye("nothing to do")
        else:
            self._fail(f"unknown action {kind!r}")

    def _call(self, action: MenuAction) -> None:
        to, target = action.to, action.id
        if to == "user":
            user = self._config.user(self.account_id, target)
            if user is None or user.account_id != self._account:
                self._fail(f"user {target} not found")
            else:
                self._call_user(user)
        elif to in ("phnum", "other", "sip"):
            if not target:
                self._fail(f"call {to} without a number or address")
            elif to == "phnum" or (to == "other" and is_number(target)):
                self._start_transfer(target, "phnum", None)
            else:
                address = sip_address(target)
                app = self._local_app(address)
                if app is None:
                    self._start_transfer(address, "sip", None)
                elif app.app_type == "sysprompt":
                    self._fail(f"{target} is a sysprompt app and cannot take calls")
                else:
                    self._log("note", f"{target} is app {app.app_id} here: entering it")
                    self._enter_app(app)
        elif to == "csg":
            self._call_team(target)
        else:
            self._fail(f"cannot call {to!r}")

    def _local_app(self, address: str) -> AppConfig | None:
        return local_app(self._config, self.account_id, address)

    def _call_user(self, user: UserConfig) -> None:
        # Whether the user can be reached is known when the transfer rings (route_transfer).
        self._start_transfer(user.call_target, "user", user.user_id)

    def _start_transfer(self, target: str, kind: str, user_id: str | None) -> None:
        app = self._app
        self._transfer = Transfer(target, kind, user_id, app.app_id if app is not None else "")
        self._play(self._please_wait(), False, self._send_transfer)

    def _please_wait(self) -> list[Play]:
        app = self._app
        return [self._app_prompt(app, "please_wait")] if app and app.app_type == "ivr" else []

    # -- teams ----------------------------------------------------------------------------

    def _call_team(self, team_id: str) -> None:
        team = self._config.team(self.account_id, team_id)
        if team is None or team.account_id != self._account:
            self._fail(f"team {team_id} not found")
            return
        members: list[UserConfig] = []
        for user_id in team.members:
            user = self._config.user(self.account_id, user_id)
            if user is not None and user.account_id == self._account:
                members.append(user)
        if team.strategy == "rotate" and members:
            last = self._config.last_answered(team.team_id)
            ids = [member.user_id for member in members]
            if last in ids:
                start = ids.index(last) + 1
                members = members[start:] + members[:start]
        self._team = _TeamRing(team, members)
        self._play(self._please_wait(), False, self._ring_team)

    def _ring_team(self) -> None:
        """Ring the next member (all of them at once for `all`), or give up."""
        ring = self._team
        assert ring is not None
        team = ring.team
        if ring.started is None:
            ring.started = self._now
        app_id = self._app.app_id if self._app is not None else ""
        if team.strategy == "all":
            if ring.next:
                self._team_gave_up("every member rang out")
                return
            ring.next = len(ring.members)
            reachable = ring.members  # who can be rung now, the driver says (route_transfer)
            if not reachable:
                self._team_gave_up("it has no members")
                return
            seconds = min(team.ring_seconds, team.max_seconds)
            names = ", ".join(self._member_name(m) for m in reachable)
            transfer = Transfer(
                f"team:{team.team_id}",
                "team",
                None,
                app_id,
                seconds,
                team.team_id,
                tuple(m.user_id for m in reachable),
                False,
                1,
            )
            self._ring(transfer, f"ringing team {team.name!r} at once: {names}, {seconds:g} s")
            return
        left = team.max_seconds - (self._now - ring.started)
        if ring.next >= len(ring.members):
            self._team_gave_up("every member was tried" if ring.members else "it has no members")
            return
        if left <= 0:
            self._team_gave_up(f"max_seconds {team.max_seconds:g} used up")
            return
        member = ring.members[ring.next]
        ring.next += 1
        seconds = min(team.ring_seconds, left)
        transfer = Transfer(
            member.call_target,
            "user",
            member.user_id,
            app_id,
            seconds,
            team.team_id,
            (),
            True,
            ring.next,
        )
        self._ring(
            transfer,
            f"ringing {self._member_name(member)}, {seconds:g} s "
            f"(team {team.name!r}, {ring.next} of {len(ring.members)})",
        )

    def _ring(self, transfer: Transfer, text: str) -> None:
        self._transfer = transfer
        self._phase = _TRANSFERRING
        self._log("transfer", text)
        self._out.append(transfer)

    def _ringing_whom(self) -> str:
        transfer = self._transfer
        assert transfer is not None
        if transfer.kind == "team" or transfer.user_id is None:
            return f"team {self._team.team.name!r}" if self._team is not None else transfer.target
        user = self._config.user(self.account_id, transfer.user_id)
        return self._member_name(user) if user is not None else transfer.user_id

    @staticmethod
    def _member_name(member: UserConfig) -> str:
        return f"{member.name or 'user'} ({member.user_id})"

    def _team_gave_up(self, reason: str) -> None:
        ring = self._team
        assert ring is not None
        self._team = None
        self._transfer = None
        self._phase = _PLAYING
        team = ring.team
        why = f"nobody in team {team.name!r} answered ({reason})"
        if not team.no_answer.in_use:
            self._fail(why)
            return
        self._log("failure", why)
        no_answer = team.no_answer

        def run_no_answer() -> None:
            self._log("action", f"no answer → {describe(no_answer)}")
            self._run(no_answer, "no_answer")

        self._play([self._sys_prompt("all_busy")], False, run_no_answer)

    def _send_transfer(self) -> None:
        assert self._transfer is not None
        self._phase = _TRANSFERRING
        self._log("transfer", f"ringing {self._transfer.target}")
        self._out.append(self._transfer)

    def _connect(self, action: MenuAction) -> None:
        target = self._config.app(action.id)
        if target is None or target.account_id != self._account:
            self._fail(f"app {action.id} not found")
        elif target.app_type == "sysprompt":
            self._fail(f"app {action.id} is a sysprompt app and cannot take calls")
        else:
            self._enter_app(target)

    def _play_action(self, action: MenuAction) -> None:
        prompt = self._config.prompt(self.account_id, action.id)
        if prompt is None or prompt.account_id != self._account:
            self._fail(f"prompt {action.id} not found")
            return
        app = self._app
        owner = (
            app
            if app is not None and prompt.app_id == app.app_id
            else self._config.app(prompt.app_id)
        )
        if owner is not None and owner.account_id == self._account:
            voice = owner.voice
        else:
            voice = app.voice if app is not None else "en"
        if app is not None and app.is_menu and not self._closed:
            self._play([(prompt, voice)], True, self._menu_again)
        else:
            self._hangup_reason = "announcement finished"
            self._play([(prompt, voice)], False, self._hang_up)

    def _repeat(self) -> None:
        app = self._app
        if app is None or self._closed:
            self._hangup_reason = "nothing to repeat"
            self._hang_up()
            return
        if app.is_menu:
            self._present_menu(False)
            return
        self._attempts += 1
        if self._attempts > app.max_retries:
            self._hangup_reason = "repeated enough"
            self._hang_up()
        else:
            self._announce()

    def _fail(self, reason: str) -> None:
        self._log("failure", reason)
        unavailable = self._sys_prompt("unavailable")
        if self._end_reason is not None:  # no menu again: the call is being ended
            self._hangup_reason = self._end_reason
            self._play([unavailable], False, self._hang_up)
            return
        app = self._app
        if self._closed:
            self._hangup_reason = "unavailable"  # never back to a menu that is closed
            self._play([unavailable], False, self._hang_up)
            return
        if app is not None and app.is_menu and self._hops <= self._max_hops:
            self._play([unavailable], True, self._menu_again)
            return
        if app is not None and app.is_announcement:
            fallback = app.action("timeout")
            if self._origin != "timeout" and fallback.in_use and not self._timeout_used:
                self._timeout_used = True
                self._play([unavailable], False, self._run_timeout)
                return
        self._hangup_reason = "unavailable"
        self._play([unavailable], False, self._hang_up)

    def _run_timeout(self) -> None:
        fallback = self._current().action("timeout")
        self._log("action", f"timeout → {describe(fallback)}")
        self._run(fallback, "timeout")

    # -- mailbox --------------------------------------------------------------------------

    def _enter_mailbox(self, app: AppConfig) -> None:
        held = self._config.message_count(app.app_id)
        if held >= app.max_messages:
            self._log("note", f"mailbox full ({held} of {app.max_messages} messages)")
            self._hangup_reason = "mailbox full"
            self._play([self._sys_prompt("unavailable", mailbox=True)], False, self._hang_up)
            return
        plays = [self._app_prompt(app, "greeting")] if app.greeting_prompt else []
        self._play(plays, False, self._record)

    def _record(self) -> None:
        app = self._current()
        self._phase = _RECORDING
        self._record_started = self._now
        self._out.append(Record(app.app_id, app.max_message_seconds))

    def _recorded(self, duration: float, reason: str) -> None:
        app = self._current()
        kept = duration >= MIN_MESSAGE_SECONDS
        if not kept:
            self._out.append(DiscardRecording(app.app_id, duration))
            self._log("note", f"message of {duration:.1f} s discarded (shorter than 1 s; {reason})")
        else:
            self._voicemail = duration
            self._out.append(KeepVoicemail(app.app_id, duration))
            self._log("note", f"voicemail of {duration:.1f} s kept (ended by {reason})")
        if reason == "hangup":
            self._log("hangup", "caller hung up")
            self._finish("caller_hangup")
            return
        self._phase = _PLAYING
        if self._end_reason is not None:
            self._hangup_reason = self._end_reason
            if self._end_at_once:
                self._hang_up()
                return
        else:
            self._hangup_reason = "message taken" if kept else "no message left"
        if not kept:
            # The goodbye says the message was recorded: never after one was thrown away.
            plays = [self._sys_prompt("no_message", mailbox=True)]
        else:
            plays = [self._app_prompt(app, "goodbye")] if app.goodbye_prompt else []
        self._play(plays, False, self._hang_up)

    # -- endings --------------------------------------------------------------------------

    def _goodbye(self, reason: str) -> None:
        self._hangup_reason = reason
        self._play([self._sys_prompt("goodbye")], False, self._hang_up)

    def _hang_up(self) -> None:
        self._cancel_timer()
        self._out.append(HangUp(self._hangup_reason))
        self._log("hangup", f"hung up: {self._hangup_reason}")
        self._finish("hangup")

    def _finish(self, kind: OutcomeKind, target: str | None = None) -> None:
        self._phase = _ENDED
        self._queue = []
        self._then = _nothing
        if self._voicemail is not None:
            kind = "voicemail"
        self.outcome = Outcome(kind, self.app_id, target, self._voicemail)

    # -- plumbing -------------------------------------------------------------------------

    def _current(self) -> AppConfig:
        assert self._app is not None, "no app entered yet"
        return self._app

    def _play(self, plays: list[Play], barge_in: bool, then: Callable[[], None]) -> None:
        """Play `plays` one after another, then call `then`."""
        self._queue = plays
        self._barge = barge_in
        self._then = then
        self._phase = _PLAYING
        self._next_prompt()

    def _next_prompt(self) -> None:
        queue = self._queue
        while queue:
            prompt, voice = queue.pop(0)
            if not prompt.has_audio:
                self._log("note", f"prompt {prompt.name!r} ({prompt.prompt_id}) has no audio")
                continue
            self._play_id += 1
            self._playing = True
            self._out.append(PlayPrompt(self._play_id, prompt, voice, self._barge))
            return
        then = self._then
        self._then = _nothing
        then()

    def _start_timer(self, seconds: float, purpose: str) -> None:
        self._timer_id += 1
        self._timer_purpose = purpose
        self._out.append(StartTimer(self._timer_id, seconds, purpose))

    def _cancel_timer(self) -> None:
        if self._timer_purpose is not None:
            self._timer_purpose = None
            self._out.append(CancelTimer(self._timer_id))

    def _app_prompt(self, app: AppConfig, key: str) -> Play:
        cache_key = (app.app_id, key)
        prompt = self._standard.get(cache_key)
        if prompt is None:
            found = self._config.standard_prompt(app.app_id, key)
            if found is None or found.account_id != app.account_id:
                found = default_standard_prompt(app, key)
            assert found is not None, f"{key} is not a standard prompt of {app.app_type} apps"
            prompt = self._standard[cache_key] = found
        return prompt, app.voice

    def _sys_prompt(self, key: str, *, mailbox: bool = False) -> Play:
        if not self._sys_loaded:
            self._sys_loaded = True
            found = self._config.sysprompt_app(self.account_id)
            if found is not None and found.account_id == self._account:
                self._sys = found
        sys_app = self._sys
        if sys_app is None:
            return _builtin_sys_prompt(key, self.account_id), "en"
        prompt, voice = self._app_prompt(sys_app, key)
        if mailbox and sys_app.usermailbox_voice:
            voice = sys_app.usermailbox_voice
        elif key in ("invalid_option", "no_input"):
            repeated = self._attempts > 1 and sys_app.error_repeat_voice
            voice = (sys_app.error_repeat_voice if repeated else sys_app.error_voice) or voice
        return prompt, voice or "en"

    def _log(self, kind: LogKind, text: str) -> None:
        self._rows.append((self._now, kind, self.app_id, text, None))

    def _log_key(self, digit: str, meaning: str) -> None:
        self._rows.append((self._now, "key", self.app_id, meaning, digit))


def _builtin_sys_prompt(key: str, account_id: str) -> PromptRef:
    """A system message for an account without a sysprompt app: the default recording."""
    name = next(p.name for p in STANDARD_PROMPTS["sysprompt"] if p.key == key)
    return PromptRef(f"default.{key}", "", account_id, name, key, None, True)


_HANDLERS: dict[type, Callable[[CallFlow, Any], None]] = {
    CallStarted: CallFlow._on_started,
    PromptFinished: CallFlow._on_prompt_finished,
    DigitPressed: CallFlow._on_digit,
    TimerFired: CallFlow._on_timer,
    RecordingFinished: CallFlow._on_recording_finished,
    TransferAnswered: CallFlow._on_transfer_answered,
    TransferFailed: CallFlow._on_transfer_failed,
    CallerHungUp: CallFlow._on_hangup,
    EndRequested: CallFlow._on_end_requested,
}
