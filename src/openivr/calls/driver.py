"""Runs the call engine on a live SIP call: engine commands become media actions, call
events become engine events. No rule of the IVR lives here; it only translates."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, assert_never

import numpy as np

from openivr.apps.promptaudio import PromptSounds
from openivr.audio import tones
from openivr.calls.records import CallNotes
from openivr.engine import commands as cmd
from openivr.engine import events as ev
from openivr.engine.call import MIN_MESSAGE_SECONDS, CallFlow
from openivr.engine.recorder import PromptRecorder
from openivr.sip import call as sip
from openivr.store.snapshot import AccountSnapshot

log = logging.getLogger(__name__)

_RECORDING_REASONS: dict[str, ev.RecordingEnd] = {
    "key": "stop_key",
    "silence": "silence",
    "max_length": "max_length",
    "hangup": "hangup",
    "stopped": "ended",  # only StopRecording stops a recording of ours
}
_TRANSFER_FAILURES: dict[str, ev.TransferFailure] = {"busy": "busy", "no_answer": "no_answer"}
_BEEP = -1  # the play id of the beep before a recording


@dataclass(frozen=True)
class TransferRequest:
    """What the engine asked to ring, with what the account says about caller id.

    A team's ring carries the team, the member's place (`attempt`) or the `members` rung at
    once, its ring time and whether a member already on a call here is skipped (see
    engine.commands.Transfer).
    """

    target: str
    kind: str
    user_id: str | None
    caller_id: str
    ring_seconds: float | None = None
    team_id: str | None = None
    members: tuple[str, ...] = ()
    skip_busy: bool = False
    attempt: int = 0
    bridge: bool = False  # bridged even with --transfer-mode refer (a callback's second leg)
    account_id: str = ""  # whose call it is (a user answering may have it recorded)


class Transferring(Protocol):
    """Connects a caller to a target (the B2BUA or REFER connector)."""

    async def __call__(
        self, call: sip.MediaCall, request: TransferRequest, on_answer: Callable[[str], None]
    ) -> dict[str, Any]:
        """Ring the target; call on_answer(who) when it answers (the member's user id when a
        team rang at once, else ""); return the leg (status, ...)."""
        ...


VoicemailSink = Callable[[str, str, np.ndarray[Any, np.dtype[np.int16]]], Awaitable[str]]
# Makes a recording a prompt's message (prompt id, 8 kHz samples); whether it was saved.
PromptSink = Callable[[str, np.ndarray[Any, np.dtype[np.int16]]], Awaitable[bool]]


class _Timer:
    __slots__ = ("handle",)

    def __init__(self, handle: asyncio.TimerHandle):
        self.handle = handle


class CallDriver:
    """One live call: the engine decides, the SIP call plays, records, rings and hangs up."""

    def __init__(
        self,
        call: sip.MediaCall,
        snapshot: AccountSnapshot,
        app_id: str,
        sounds: PromptSounds,
        notes: CallNotes,
        *,
        voicemail: VoicemailSink,
        transfer: Transferring | None,
        caller_id: str,
        team_id: str | None = None,
        recorder: PromptRecorder | None = None,
        save_prompt: PromptSink | None = None,
    ):
        self.call = call
        self.snapshot = snapshot
        self.app_id = app_id
        self.sounds = sounds
        self.notes = notes
        self.voicemail = voicemail
        self.transfer = transfer
        self.caller_id = caller_id
        self.save_prompt = save_prompt
        # A number connected straight to a team enters the flow at the team, not an app; a
        # call to the recording shortcode runs the recorder instead of any app.
        self.engine: CallFlow | PromptRecorder = recorder or CallFlow(
            snapshot.config, app_id, account_id=snapshot.account_id, team_id=team_id
        )
        self.inbox: asyncio.Queue[object] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.plays: deque[int] = deque()  # play ids in the order PlaybackFinished will come
        self.timers: dict[int, _Timer] = {}
        self.pending_record: cmd.Record | None = None
        self.recording_for = ""  # the mailbox of the recording in progress or not yet kept
        self.recorded: np.ndarray[Any, np.dtype[np.int16]] | None = None
        self.transfer_task: asyncio.Task[dict[str, Any]] | None = None
        self.pump: asyncio.Task[None] | None = None
        self.hung_up = False
        self.fed_at = 0.0  # the time of the last event the engine took
        self.finished = asyncio.Event()  # set once the call is over and its message stored

    def now(self) -> float:
        """Seconds since the call was answered (the engine's clock)."""
        return self.loop.time() - self.t0

    async def run(self) -> None:
        """Answer and run the call until the engine ends it or the caller hangs up."""
        try:
            await self.call.answer()
            self.t0 = self.loop.time()
            self._start_pump()
            # The engine has no clock: it is told the instant the call started.
            started = ev.CallStarted(0.0, self.call.caller, self.call.dialed, datetime.now(UTC))
            await self._feed(started)
            while not self.engine.ended:
                item = await self.inbox.get()
                await self._dispatch(item)
            # A bridged call goes on after the engine's part is done.
            if self.transfer_task is not None:
                await asyncio.shield(self.transfer_task)
        except Exception:
            log.exception("call %s: the call flow failed; ending the call", self.call.call_id)
            self.notes.detail.setdefault("hangup_reason", "error")
            await self._rescue_message()
        finally:
            for timer in self.timers.values():
                timer.handle.cancel()
            self._stop_pump()
            self._note_outcome()
            if not self.call.ended:
                await self.call.hangup()
            self.finished.set()

    def end(self, reason: str, *, at_once: bool = False) -> None:
        """Our side ends the call (the node stops): the engine decides how, keeping a message
        being recorded. A call the engine is done with (bridged) is hung up at once."""
        if self.engine.ended:
            if at_once and not self.call.ended:
                self.notes.detail["hangup_reason"] = reason
                self.loop.create_task(self.call.hangup())
            return
        self.inbox.put_nowait(ev.EndRequested(self.now(), reason, at_once))

    async def _rescue_message(self) -> None:
        """The call flow failed: what the caller said into a mailbox is kept all the same."""
        self._stop_pump()
        pcm = self.recorded
        if self.call.recording:
            self.call.stop_recording()
        while not self.inbox.empty():
            item = self.inbox.get_nowait()
            if isinstance(item, sip.AudioRecorded):
                pcm = np.frombuffer(item.pcm, dtype="<i2").astype(np.int16)
        for item in self.call.pending_events():
            if isinstance(item, sip.AudioRecorded):
                pcm = np.frombuffer(item.pcm, dtype="<i2").astype(np.int16)
        self.recorded = None
        if pcm is None or not self.recording_for or len(pcm) < MIN_MESSAGE_SECONDS * 8000:
            return
        await self._store_message(self.recording_for, pcm)
        self.notes.outcome = "voicemail"

    # events in ------------------------------------------------------------------------------

    def _stop_pump(self) -> None:
        # The cancelled pump's traceback holds its frame, which holds this driver: were the
        # driver still to hold the task, the call would be a cycle only a full collection frees.
        if self.pump is not None:
            self.pump.cancel()
            self.pump = None

    def _start_pump(self) -> None:
        async def pump() -> None:
            while True:
                event = await self.call.next_event()
                await self.inbox.put(event)
                if isinstance(event, sip.HungUp):
                    return

        self.pump = self.loop.create_task(pump())

    async def _dispatch(self, item: object) -> None:
        now = self.now()
        if isinstance(item, sip.PlaybackFinished):
            play_id = self.plays.popleft() if self.plays else None
            if play_id == _BEEP:
                self._begin_recording()
            elif play_id is not None and not item.interrupted:
                await self._feed(ev.PromptFinished(now, play_id))
        elif isinstance(item, sip.Dtmf):
            self.notes.keys += item.key
            await self._feed(ev.DigitPressed(now, item.key))
        elif isinstance(item, sip.AudioRecorded):
            pcm = np.frombuffer(item.pcm, dtype="<i2").astype(np.int16)
            self.recorded = pcm
            reason = _RECORDING_REASONS.get(item.reason, "stop_key")
            if item.key:
                self.notes.keys += item.key
            await self._feed(ev.RecordingFinished(now, len(pcm) / 8000, reason))
        elif isinstance(item, sip.HungUp):
            if not self.hung_up:
                self.hung_up = True
                self.pending_record = None
                await self._feed(ev.CallerHungUp(now))
        elif isinstance(
            item,
            ev.TimerFired
            | ev.PromptFinished
            | ev.TransferAnswered
            | ev.TransferFailed
            | ev.EndRequested
            | ev.RecordingFinished
            | ev.PromptSaved,
        ):
            await self._feed(item)

    async def _feed(self, event: object) -> None:
        if self.engine.ended:
            return
        # An event stamped when it was queued (a timer, a transfer's end) can reach the engine
        # after one stamped later, when it was taken (keys handed over as a transfer ends): the
        # engine's clock never goes back, so it takes the earlier one at the later time.
        at = getattr(event, "now", self.fed_at)
        if at < self.fed_at:
            event = replace(event, now=self.fed_at)  # type: ignore[type-var]
        self.fed_at = max(at, self.fed_at)
        commands = self.engine.handle(event)  # type: ignore[arg-type]
        if self.engine.ended:
            # Before HangUp runs: the SIP layer writes the record as the call ends.
            self._note_outcome()
        for command in commands:
            await self._execute(command)

    def _note_outcome(self) -> None:
        outcome = self.engine.outcome
        if outcome is not None:
            self.notes.outcome = outcome.kind
            if outcome.target:
                self.notes.detail["target"] = outcome.target

    # commands out ---------------------------------------------------------------------------

    async def _execute(self, command: cmd.RecorderCommand) -> None:
        match command:
            case cmd.PlayPrompt():
                await self._play(command)
            case cmd.StopPrompt():
                if self.call.playing:
                    self.call.stop_playing()
            case cmd.StartTimer():
                self._start_timer(command)
            case cmd.CancelTimer():
                timer = self.timers.pop(command.timer_id, None)
                if timer is not None:
                    timer.handle.cancel()
            case cmd.CollectDigits():
                pass  # informational: keys always arrive as events
            case cmd.Record():
                self._record(command)
            case cmd.StopRecording():
                self._stop_recording()
            case cmd.KeepVoicemail():
                await self._keep(command)
            case cmd.DiscardRecording():
                self.recorded = None
                self.recording_for = ""
            case cmd.Transfer():
                self._transfer(command)
            case cmd.EnterApp():
                self.notes.apps.append(command.app_id)
            case cmd.HangUp():
                self.notes.detail["hangup_reason"] = command.reason
                await self.call.hangup()
            case cmd.PlayRecorded():
                self._play_recorded(command)
            case cmd.SavePromptMessage():
                await self._save_prompt(command)
            case _:
                assert_never(command)

    async def _play(self, command: cmd.PlayPrompt) -> None:
        sound = None
        try:
            sound = await self.sounds.resolve_async(self.snapshot, command.prompt, command.voice)
        except Exception:  # a broken recording must not end the call: it is skipped, logged
            log.exception("prompt %s could not be loaded", command.prompt.prompt_id)
        if self.call.ended:
            return
        if sound is None:
            # Nothing to play (a custom prompt without a message): it is over at once.
            self.inbox.put_nowait(ev.PromptFinished(self.now(), command.play_id))
            return
        # play() replaces a playing prompt, whose PlaybackFinished(True) comes first: the
        # queue of play ids stays in the order the SIP call reports them.
        self.plays.append(command.play_id)
        self.call.play(sound.audio, barge_in=command.barge_in)

    def _play_recorded(self, command: cmd.PlayRecorded) -> None:
        pcm = self.recorded
        if self.call.ended:
            return
        if pcm is None or len(pcm) == 0:
            self.inbox.put_nowait(ev.PromptFinished(self.now(), command.play_id))
            return
        self.plays.append(command.play_id)
        self.call.play_pcm(pcm, barge_in=command.barge_in)

    async def _save_prompt(self, command: cmd.SavePromptMessage) -> None:
        pcm, self.recorded = self.recorded, None
        saved = False
        if pcm is not None and len(pcm) and self.save_prompt is not None:
            saved = await self.save_prompt(command.prompt_id, pcm)
        if saved and pcm is not None:
            self.notes.detail["prompt_id"] = command.prompt_id
            self.notes.detail["prompt_seconds"] = round(len(pcm) / 8000, 2)
        self.inbox.put_nowait(ev.PromptSaved(self.now(), saved))

    def _start_timer(self, command: cmd.StartTimer) -> None:
        def fire() -> None:
            if self.timers.pop(command.timer_id, None) is not None:
                self.inbox.put_nowait(ev.TimerFired(self.now(), command.timer_id))

        handle = self.loop.call_later(command.seconds, fire)
        self.timers[command.timer_id] = _Timer(handle)

    def _record(self, command: cmd.Record) -> None:
        self.pending_record = command
        self.recording_for = command.app_id
        self.recorded = None
        if command.beep:
            self.plays.append(_BEEP)
            self.call.play_pcm(tones.beep())
        else:
            self._begin_recording()

    def _begin_recording(self) -> None:
        command, self.pending_record = self.pending_record, None
        if command is None or self.call.ended:
            return
        self.call.start_recording(
            max_seconds=command.max_seconds,
            max_silence=command.max_silence,
            stop_keys=command.stop_key,
        )

    def _stop_recording(self) -> None:
        if self.pending_record is not None:
            # Still beeping: nothing recorded yet. The beep's end then starts nothing.
            self.pending_record = None
            self.recorded = np.zeros(0, dtype=np.int16)
            self.inbox.put_nowait(ev.RecordingFinished(self.now(), 0.0, "ended"))
        elif self.call.recording:
            self.call.stop_recording()  # its RecordingFinished("stopped") follows

    async def _keep(self, command: cmd.KeepVoicemail) -> None:
        pcm = self.recorded
        self.recorded = None
        self.recording_for = ""
        if pcm is None or len(pcm) == 0:
            log.warning("call %s: voicemail kept without audio", self.call.call_id)
            return
        await self._store_message(command.app_id, pcm)

    async def _store_message(self, app_id: str, pcm: np.ndarray[Any, np.dtype[np.int16]]) -> None:
        message_id = await self.voicemail(app_id, self.call.call_id, pcm)
        self.notes.detail["voicemail_id"] = message_id
        self.notes.detail["voicemail_seconds"] = round(len(pcm) / 8000, 2)

    def _transfer(self, command: cmd.Transfer) -> None:
        request = TransferRequest(
            command.target,
            command.kind,
            command.user_id,
            self.caller_id,
            command.ring_seconds,
            command.team_id,
            command.members,
            command.skip_busy,
            command.attempt,
            account_id=self.snapshot.account_id,
        )
        if self.transfer is None:
            log.info(
                "call %s: no transfer support configured for %s", self.call.call_id, command.target
            )
            self.inbox.put_nowait(ev.TransferFailed(self.now(), "unreachable"))
            return
        connect = self.transfer

        def answered(by: str) -> None:
            self.inbox.put_nowait(ev.TransferAnswered(self.now(), by))

        async def run() -> dict[str, Any]:
            # The connector reads the caller's events while it rings and bridges.
            self._stop_pump()
            try:
                leg = await connect(self.call, request, answered)
            finally:
                if not self.call.ended:
                    # Keys pressed while it rang reach the engine before the transfer's end, in
                    # the order they came: it decides them as keys during a ring, not as keys
                    # to whatever it plays after a failure.
                    for event in self.call.pending_events():
                        self.inbox.put_nowait(event)
                    self._start_pump()
            self.notes.transfers.append(leg)
            status = str(leg.get("status", "unreachable"))
            if status == "answered":
                return leg
            if self.call.ended:
                self.inbox.put_nowait(sip.HungUp(by="caller", reason="hung up while ringing"))
            else:
                reason = _TRANSFER_FAILURES.get(status, "unreachable")
                self.inbox.put_nowait(ev.TransferFailed(self.now(), reason))
            return leg

        self.transfer_task = self.loop.create_task(run())
