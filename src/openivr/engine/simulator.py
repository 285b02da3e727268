"""Run a call through the engine in simulated time: what a caller would hear, key by key.

What the caller does is a timeline (see engine/timeline.py). When the timeline runs out the
caller stays silent and timers run: timeouts, retries, goodbye. The run stops after
`max_events` events at the latest (`truncated` is then true).

A team's ring follows the timeline's `team` step (who answers, who is busy); without one the
first member rung answers after 4 s. `simulate(..., at=datetime)` runs the call at that
instant: opening hours are decided from it (the transcript's `hours` says open or closed and by
which rule). Without it the line is open.

A little over 600 lines on purpose: one run's simulated clock, prompts, recordings and rings
share its state (`_Simulation`); what the caller does (engine/timeline.py) and what the run
leaves (engine/transcript.py) are modules of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from math import isfinite
from typing import Any, assert_never

from openivr.engine.call import CallFlow
from openivr.engine.commands import (
    CancelTimer,
    CollectDigits,
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
from openivr.engine.config import CallConfig, PromptRef, UserConfig
from openivr.engine.events import (
    CallerHungUp,
    CallStarted,
    DigitPressed,
    Event,
    PromptFinished,
    RecordingEnd,
    RecordingFinished,
    TimerFired,
    TransferAnswered,
    TransferFailed,
)
from openivr.engine.routing import Reachability, route_transfer
from openivr.engine.timeline import (
    NOBODY,
    RecordEnd,
    Step,
    TransferResult,
    parse_timeline,
)
from openivr.engine.transcript import (
    AudioSegment,
    Transcript,
    TranscriptEntry,
    hours_view,
    rounded,
)

PromptDuration = Callable[[PromptRef, str], float]

# The engine's reason for each way a caller ends a recording.
_RECORDING_ENDS: dict[RecordEnd, RecordingEnd] = {
    "key": "stop_key",
    "silence": "silence",
    "hangup": "hangup",
}
# Seconds of ringing before each transfer result when the timeline does not say.
RING_SECONDS: dict[str, float] = {
    "answered": 4.0,
    "busy": 1.0,
    "no_answer": 20.0,
    "unreachable": 1.0,
}
# When a team step does not say how long the member it names rings before answering.
TEAM_ANSWER_SECONDS = 4.0
BEEP_SECONDS = 0.5
MAX_EVENTS = 10_000


class SimulationError(ValueError):
    """Bad input to `simulate` (unknown app, a prompt duration that is not a number)."""


def estimate_prompt_duration(prompt: PromptRef, voice: str) -> float:
    """A guess at a prompt's length from its text (2.5 words a second), 2 s without text."""
    if not prompt.text:
        return 2.0
    return round(0.4 + len(prompt.text.split()) / 2.5, 2)


def simulate(
    config: CallConfig,
    app_id: str,
    caller: str,
    dialed: str,
    timeline: Any,
    prompt_duration: PromptDuration = estimate_prompt_duration,
    *,
    account_id: str | None = None,
    max_events: int = MAX_EVENTS,
    reachability: Reachability | None = None,
    at: datetime | None = None,
) -> Transcript:
    """Drive a call through the engine with simulated time and return its transcript.

    `reachability` is what the node knows now (trunk, registered phones); by default a trunk
    exists and no phone is registered. `at` is the instant the call starts (opening hours)."""
    if at is not None and at.tzinfo is None:
        raise SimulationError("at: the instant needs its UTC offset")
    steps = timeline if _is_steps(timeline) else parse_timeline(timeline)
    app = config.app(app_id)
    if app is None or (account_id is not None and app.account_id != account_id):
        raise SimulationError(f"app_id: no voice app {app_id!r}")
    if app.app_type == "sysprompt":
        raise SimulationError(f"app_id: {app_id} is a sysprompt app and cannot take calls")
    run = _Simulation(config, app_id, account_id, steps, prompt_duration, max_events, reachability)
    run.run(caller, dialed, at)
    return Transcript(
        app_id=app_id,
        caller=caller,
        dialed=dialed,
        entries=run.entries,
        audio=run.audio,
        outcome=run.call.outcome,
        total_seconds=run.now,
        log=run.call.log,
        unused_steps=len(steps) - run.index,
        truncated=run.truncated,
        stalled=run.stalled,
        at=at,
        hours=list(run.call.hours),
    )


def _is_steps(timeline: Any) -> bool:
    return isinstance(timeline, list) and all(isinstance(step, Step) for step in timeline)


@dataclass(slots=True)
class _Playing:
    play_id: int
    prompt: PromptRef
    voice: str
    start: float
    duration: float
    entry: TranscriptEntry
    segment: AudioSegment

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(slots=True)
class _Recording:
    start: float  # after the beep
    ends_at: float
    duration: float
    reason: RecordingEnd


@dataclass(slots=True)
class _Ringing:
    start: float
    ends_at: float
    result: TransferResult
    entry: TranscriptEntry
    by: str = ""  # the member who answered a team rung at once
    note: str = ""  # said instead of the result and ring time (a member skipped as busy)


class _Simulation:
    def __init__(
        self,
        config: CallConfig,
        app_id: str,
        account_id: str | None,
        steps: list[Step],
        prompt_duration: PromptDuration,
        max_events: int,
        reachability: Reachability | None = None,
    ) -> None:
        self.config = config
        self.reach = reachability or Reachability()
        self.call = CallFlow(config, app_id, account_id=account_id)
        self.team_plan: Step | None = None
        self.steps = steps
        self.prompt_duration = prompt_duration
        self.max_events = max_events
        self.now = 0.0
        self.index = 0
        self.press_at: float | None = None
        self.playing: _Playing | None = None
        self.timers: dict[int, float] = {}
        self.recording: _Recording | None = None
        self.ringing: _Ringing | None = None
        self.entries: list[TranscriptEntry] = []
        self.audio: list[AudioSegment] = []
        self.cursor = 0.0  # time up to which `audio` accounts for what the caller hears
        self.events = 0
        self.logged = 0
        self.truncated = False
        self.stalled = False

    def run(self, caller: str, dialed: str, started: datetime | None = None) -> None:
        self.feed(CallStarted(0.0, caller, dialed, started))
        while not self.call.ended:
            if self.events >= self.max_events:
                self.truncated = True
                break
            # (time, order at equal times, what): a key 'during' a prompt beats its end,
            # the end of a prompt beats a key pressed 'after' it, and keys beat timers.
            candidates: list[tuple[float, int, str]] = []
            playing = self.playing
            if playing is not None:
                candidates.append((playing.end, 1, "prompt"))
            step_at = self.step_time()
            if step_at is not None:
                step = self.steps[self.index]
                order = 0 if step.during is not None or step.at is not None else 2
                candidates.append((step_at, order, "step"))
            if self.recording is not None:
                candidates.append((self.recording.ends_at, 3, "recording"))
            if self.ringing is not None:
                candidates.append((self.ringing.ends_at, 3, "transfer"))
            if self.timers:
                candidates.append((min(self.timers.values()), 4, "timer"))
            if not candidates:
                self.stalled = True  # the engine waits for nothing: an engine bug
                break
            at, _, what = min(candidates)
            self.now = max(self.now, at)
            if what == "prompt":
                self.prompt_ended()
            elif what == "step":
                self.take_step()
            elif what == "recording":
                self.recording_ended()
            elif what == "transfer":
                self.transfer_ended()
            else:
                self.timer_fired()
        self.finish()

    # -- timeline ---------------------------------------------------------------------------

    def step_time(self) -> float | None:
        if self.index >= len(self.steps):
            return None
        if self.press_at is not None:
            return self.press_at
        step = self.steps[self.index]
        if step.kind not in ("key", "hangup"):
            return None  # record and transfer steps wait for the engine to ask
        playing = self.playing
        if step.at is not None:
            self.press_at = max(self.now, step.at)
        elif step.during is not None:
            if playing is None or not _matches(playing.prompt, step.during):
                return None
            offset = step.after if step.after is not None else playing.duration / 2
            self.press_at = max(self.now, min(playing.start + offset, playing.end))
        elif playing is None and self.ringing is None:
            self.press_at = self.now + (step.after or 0.0)
        return self.press_at

    def next_step(self, kind: str) -> Step | None:
        """Take the current step if it is of `kind`."""
        if self.index < len(self.steps) and self.steps[self.index].kind == kind:
            step = self.steps[self.index]
            self.index += 1
            self.press_at = None
            return step
        return None

    def take_step(self) -> None:
        step = self.steps[self.index]
        self.index += 1
        self.press_at = None
        recording = self.recording
        if recording is not None and (step.kind == "hangup" or step.key == "#"):
            # The recorder stops on '#' or hang-up by itself and reports the length.
            self.recording = None
            elapsed = max(0.0, self.now - recording.start)
            reason: RecordingEnd = "hangup" if step.kind == "hangup" else "stop_key"
            if step.kind == "key":
                self.add("key", "ends the message", digit="#")
            self.end_recording(recording, elapsed, reason)
            return
        if step.kind == "hangup":
            self.feed(CallerHungUp(self.now))
        else:
            self.feed(DigitPressed(self.now, step.key))

    # -- what the engine started ends -------------------------------------------------------

    def prompt_ended(self) -> None:
        playing = self.playing
        assert playing is not None
        self.playing = None
        self.cursor = playing.end
        self.feed(PromptFinished(self.now, playing.play_id))

    def recording_ended(self) -> None:
        recording = self.recording
        assert recording is not None
        self.recording = None
        self.end_recording(recording, recording.duration, recording.reason)

    def end_recording(self, recording: _Recording, duration: float, reason: RecordingEnd) -> None:
        self.audio.append(AudioSegment("recording", recording.start, self.now - recording.start))
        self.cursor = self.now
        self.add(
            "recording",
            f"caller recorded {duration:.1f} s (ended by {reason.replace('_', ' ')})",
            duration=rounded(duration),
            reason=reason,
        )
        self.feed(RecordingFinished(self.now, duration, reason))

    def transfer_ended(self) -> None:
        ringing = self.ringing
        assert ringing is not None
        self.ringing = None
        self.stop_ringback(ringing)
        ringing.entry.data["result"] = ringing.result
        if ringing.note:
            ringing.entry.text += f": {ringing.note}"
        else:
            by = f" by {self.member_name(ringing.by)}" if ringing.by else ""
            ringing.entry.text += (
                f": {ringing.result.replace('_', ' ')}{by} after {self.now - ringing.start:.1f} s"
            )
        if ringing.by:
            ringing.entry.data["answered_by"] = ringing.by
        if ringing.result == "answered":
            self.feed(TransferAnswered(self.now, ringing.by))
        else:
            self.feed(TransferFailed(self.now, ringing.result))

    def stop_ringback(self, ringing: _Ringing) -> None:
        self.audio.append(AudioSegment("ringback", ringing.start, self.now - ringing.start))
        self.cursor = self.now
        ringing.entry.data["ring_seconds"] = rounded(self.now - ringing.start)

    def timer_fired(self) -> None:
        timer_id = min(self.timers, key=lambda key: (self.timers[key], key))
        del self.timers[timer_id]
        self.feed(TimerFired(self.now, timer_id))

    # -- the engine -------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        self.events += 1
        if self.playing is None and self.recording is None and self.ringing is None:
            self.silence_until(self.now)
        commands = self.call.handle(event)
        log = self.call.log
        decided = len(self.call.hours)
        for entry in log[self.logged :]:
            if entry.kind == "transfer":
                continue  # the simulator's own transfer entry says more (result, ring time)
            data: dict[str, Any] = {"app_id": entry.app_id}
            if entry.digit is not None:
                data["digit"] = entry.digit
            if entry.kind == "hours" and decided:
                data.update(hours_view(self.call.hours[decided - 1]))
            self.entries.append(TranscriptEntry(entry.at, entry.kind, entry.text, data))
        self.logged = len(log)
        for command in commands:
            match command:
                case PlayPrompt():
                    self.start_prompt(command)
                case StopPrompt():
                    self.stop_prompt(command)
                case StartTimer():
                    self.timers[command.timer_id] = self.now + command.seconds
                case CancelTimer():
                    self.timers.pop(command.timer_id, None)
                case Record():
                    self.start_recording(command)
                case Transfer():
                    self.start_transfer(command)
                case KeepVoicemail() | DiscardRecording():
                    recorded = self.of_kind("recording")
                    if recorded is not None:
                        recorded.data["kept"] = isinstance(command, KeepVoicemail)
                case CollectDigits() | StopRecording() | EnterApp() | HangUp():
                    pass  # the engine's own log entries and its ended state tell these
                case _:
                    assert_never(command)
        if self.call.ended:
            if self.ringing is not None:
                self.stop_ringback(self.ringing)
                self.ringing = None
            if self.playing is not None:  # the caller hung up mid-prompt
                self.cut_prompt(self.playing)

    def start_prompt(self, command: PlayPrompt) -> None:
        prompt = command.prompt
        try:
            duration = float(self.prompt_duration(prompt, command.voice))
        except (TypeError, ValueError) as error:
            raise SimulationError(f"prompt_duration({prompt.prompt_id}): {error}") from error
        if not isfinite(duration) or duration < 0:
            raise SimulationError(
                f"prompt_duration({prompt.prompt_id}) gave {duration!r}; need seconds >= 0"
            )
        self.silence_until(self.now)
        where = f"{prompt.key}, " if prompt.key else ""
        text = f"{prompt.name} [{where}{prompt.prompt_id}]"
        if prompt.text:
            text += f' "{prompt.text}"'
        entry = self.add(
            "prompt",
            f"{text} {duration:.1f} s",
            prompt_id=prompt.prompt_id,
            name=prompt.name,
            key=prompt.key,
            app_id=prompt.app_id,
            prompt_text=prompt.text,
            voice=command.voice,
            barge_in=command.barge_in,
            duration=rounded(duration),
            full_duration=rounded(duration),
            interrupted=False,
        )
        segment = AudioSegment("prompt", self.now, duration, prompt, command.voice, duration)
        self.audio.append(segment)
        self.playing = _Playing(
            command.play_id, prompt, command.voice, self.now, duration, entry, segment
        )

    def stop_prompt(self, command: StopPrompt) -> None:
        if self.playing is not None and self.playing.play_id == command.play_id:
            self.cut_prompt(self.playing)

    def cut_prompt(self, playing: _Playing) -> None:
        played = self.now - playing.start
        playing.entry.data["duration"] = rounded(played)
        playing.entry.data["interrupted"] = True
        playing.entry.text += f", cut after {played:.1f} s"
        playing.segment.duration = played
        self.cursor = self.now
        self.playing = None

    def start_recording(self, command: Record) -> None:
        self.silence_until(self.now)
        self.audio.append(AudioSegment("beep", self.now, BEEP_SECONDS))
        start = self.now + BEEP_SECONDS
        self.cursor = start
        limit = command.max_seconds
        step = self.next_step("record")
        reason: RecordingEnd
        if step is None:  # a silent caller
            ends_at, duration, reason = start + command.max_silence, 0.0, "silence"
        else:
            duration = step.seconds
            tail = command.max_silence if step.end == "silence" else 0.0
            reason = _RECORDING_ENDS[step.end]
            ends_at = start + duration + tail
        if ends_at - start > limit:
            ends_at, duration, reason = start + limit, limit, "max_length"
        self.add("recording", f"beep, recording (at most {limit:g} s)", max_seconds=limit)
        self.recording = _Recording(start, ends_at, duration, reason)

    def start_transfer(self, command: Transfer) -> None:
        if command.team_id is not None and command.attempt == 1:
            self.team_plan = self.next_step("team")
        if command.kind == "team":
            command = self.reachable_members(command)
            if not command.members:
                self.cannot_ring(command, "no member can be reached now", "no_phone")
                return
        else:
            user = self.user(command.user_id) if command.user_id else None
            route = route_transfer(command.kind, command.target, user, self.reach)
            if not route.reachable:
                # Nothing rings: the real call fails here too, before any ringback.
                self.cannot_ring(command, route.detail, route.failure)
                return
        plan = self.team_plan if command.team_id is not None else None
        by = note = ""
        result: TransferResult
        if plan is not None:
            result, ring, by, note = self.team_answer(command, plan)
        else:
            step = self.next_step("transfer")
            result = step.result if step is not None else "answered"
            if step is not None and step.after is not None:
                ring = step.after
            elif result == "no_answer" and command.ring_seconds is not None:
                ring = command.ring_seconds
            else:
                ring = RING_SECONDS[result]
            if command.ring_seconds is not None and ring > command.ring_seconds:
                result, ring = "no_answer", command.ring_seconds  # it rang out first
            if result == "answered" and command.kind == "team" and command.members:
                by = command.members[0]
        self.silence_until(self.now)
        data: dict[str, Any] = {
            "target": command.target,
            "target_kind": command.kind,
            "user_id": command.user_id,
            "result": None,
        }
        if command.team_id is not None:
            data.update(
                team_id=command.team_id, attempt=command.attempt, members=list(command.members)
            )
        entry = self.add("transfer", self.ringing_text(command), **data)
        self.ringing = _Ringing(self.now, self.now + ring, result, entry, by, note)

    def cannot_ring(self, command: Transfer, detail: str, failure: str) -> None:
        """A transfer nothing can ring now: it fails at once, as on a real call."""
        self.silence_until(self.now)
        data: dict[str, Any] = {
            "target": command.target,
            "target_kind": command.kind,
            "user_id": command.user_id,
            "result": failure,
        }
        if command.team_id is not None:
            data.update(team_id=command.team_id, attempt=command.attempt)
        whom = self.member_name(command.user_id) if command.user_id else command.target
        self.add("transfer", f"cannot ring {whom}: {detail}", **data)
        self.feed(TransferFailed(self.now, "unreachable"))

    def reachable_members(self, command: Transfer) -> Transfer:
        """A team's ring at once, left with the members who can be rung now (noted)."""
        members = []
        for member in command.members:
            route = route_transfer("user", member, self.user(member), self.reach)
            if route.reachable:
                members.append(member)
            else:
                self.add("note", f"{self.member_name(member)} cannot be rung now: {route.detail}")
        return replace(command, members=tuple(members))

    def team_answer(self, command: Transfer, plan: Step) -> tuple[TransferResult, float, str, str]:
        """(result, seconds of ringing, who answered, note) of a team's ring under a plan."""
        limit = (
            command.ring_seconds if command.ring_seconds is not None else RING_SECONDS["no_answer"]
        )
        after = plan.after if plan.after is not None else TEAM_ANSWER_SECONDS
        if command.kind == "team":
            answering = [m for m in command.members if self.is_member(plan.member, m)]
            if answering and after < limit:
                return "answered", after, answering[0], ""
            return "no_answer", limit, "", ""
        member = command.user_id or ""
        if command.skip_busy and any(self.is_member(b, member) for b in plan.busy):
            return "busy", 0.0, "", "busy on another call, skipped"
        if self.is_member(plan.member, member) and after < limit:
            return "answered", after, "", ""
        return "no_answer", limit, "", ""

    def is_member(self, wanted: str, user_id: str) -> bool:
        """Whether a timeline's name for a member (user id, name or extension) is this user."""
        spec = wanted.strip().lower()
        if spec == NOBODY or not spec:
            return False
        user = self.user(user_id)
        names = {user_id.lower()}
        if user is not None:
            names |= {user.name.lower(), user.extension.lower()}
        return spec in names

    def user(self, user_id: str) -> UserConfig | None:
        return self.config.user(self.call.account_id, user_id)

    def member_name(self, user_id: str) -> str:
        user = self.user(user_id)
        return f"{user.name} ({user_id})" if user is not None and user.name else user_id

    def ringing_text(self, command: Transfer) -> str:
        if command.team_id is None:
            return f"ringing {command.target}"
        team = self.config.team(self.call.account_id, command.team_id)
        team_name = team.name if team is not None else command.team_id
        if command.kind == "team":
            names = ", ".join(self.member_name(m) for m in command.members)
            return f"ringing team {team_name} at once: {names}"
        member = self.member_name(command.user_id or "")
        where = f" at {command.target}" if command.target else ""
        return f"ringing {member}{where} (team {team_name}, #{command.attempt})"

    # -- transcript -------------------------------------------------------------------------

    def silence_until(self, at: float) -> None:
        gap = at - self.cursor
        if gap > 1e-9:
            self.audio.append(AudioSegment("silence", self.cursor, gap))
            self.entries.append(
                TranscriptEntry(self.cursor, "silence", f"{gap:.1f} s", {"duration": rounded(gap)})
            )
        self.cursor = max(self.cursor, at)

    def of_kind(self, kind: str) -> TranscriptEntry | None:
        """The last entry of `kind` so far."""
        for entry in reversed(self.entries):
            if entry.kind == kind:
                return entry
        return None

    def add(self, kind: str, text: str, **data: Any) -> TranscriptEntry:
        entry = TranscriptEntry(self.now, kind, text, data)
        self.entries.append(entry)
        return entry

    def finish(self) -> None:
        if self.playing is not None:
            self.cut_prompt(self.playing)
        if self.ringing is not None:
            self.stop_ringback(self.ringing)
            self.ringing = None
        if self.recording is None:
            self.silence_until(self.now)


def _matches(prompt: PromptRef, name: str) -> bool:
    wanted = name.strip().lower()
    return wanted in (prompt.key or "", prompt.name.lower(), prompt.prompt_id.lower())
