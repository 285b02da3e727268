"""Recording a prompt by phone (*22): what the caller hears and what gets saved."""

from __future__ import annotations

from typing import Any

import pytest

from openivr.engine import AppConfig, PromptRef, StaticConfig
from openivr.engine import commands as cmd
from openivr.engine import events as ev
from openivr.engine.recorder import MAX_ATTEMPTS, PromptRecorder

ACCOUNT, OTHER = "100", "200"


def _config(*, sysprompt: bool = True) -> StaticConfig:
    apps = [
        AppConfig.from_api(
            {"app_id": "VAmain", "app_type": "ivr", "name": "Main menu"}, account_id=ACCOUNT
        ),
        AppConfig.from_api(
            {"app_id": "VAo", "app_type": "ivr", "name": "Other menu"}, account_id=OTHER
        ),
    ]
    if sysprompt:
        apps.append(
            AppConfig.from_api(
                {"app_id": "VAsys", "app_type": "sysprompt", "name": "System", "voice": "swe"},
                account_id=ACCOUNT,
            )
        )
    prompts = [
        PromptRef("PRmenu", "VAmain", ACCOUNT, "Menu", "menu", None, True, record_code=2),
        PromptRef("PRnews", "VAmain", ACCOUNT, "News", None, None, False, record_code=12),
        PromptRef("PRother", "VAo", OTHER, "Other news", None, None, False, record_code=7),
    ]
    return StaticConfig(apps, prompts=prompts)


class Call:
    """A recorder call driven by hand; `now` moves one second per event."""

    def __init__(self, config: StaticConfig | None = None, account: str = ACCOUNT) -> None:
        self.flow = PromptRecorder(config or _config(), account, "7000000001")
        self.now = 0.0
        self.said: list[str] = []  # the keys of the prompts played, in order
        self.playing: int | None = None
        self.timer: int | None = None

    def send(self, event: Any) -> list[cmd.RecorderCommand]:
        out = self.flow.handle(event)
        for command in out:
            if isinstance(command, cmd.PlayPrompt):
                self.said.append(command.prompt.key or command.prompt.prompt_id)
                self.playing = command.play_id
            elif isinstance(command, cmd.PlayRecorded):
                self.said.append("<recording>")
                self.playing = command.play_id
            elif isinstance(command, cmd.StartTimer):
                self.timer = command.timer_id
        return out

    def tick(self) -> float:
        self.now += 1.0
        return self.now

    def start(self) -> list[cmd.RecorderCommand]:
        return self.send(ev.CallStarted(0.0, "7000000001", "*22"))

    def finish_prompt(self) -> list[cmd.RecorderCommand]:
        assert self.playing is not None
        play_id, self.playing = self.playing, None
        return self.send(ev.PromptFinished(self.tick(), play_id))

    def keys(self, keys: str) -> list[cmd.RecorderCommand]:
        out: list[cmd.RecorderCommand] = []
        for key in keys:
            out += self.send(ev.DigitPressed(self.tick(), key))
        return out

    def recorded(self, seconds: float = 3.0, reason: ev.RecordingEnd = "stop_key") -> Any:
        return self.send(ev.RecordingFinished(self.tick(), seconds, reason))

    def to_review(self, code: str = "12") -> None:
        """Start, key the code, record 3 s, hear it back and the question."""
        self.start()
        self.finish_prompt()
        out = self.keys(code + "#")
        assert any(isinstance(c, cmd.Record) for c in out)
        self.recorded()
        self.finish_prompt()  # the recording played back
        self.finish_prompt()  # "press 1 to keep ..."


def _of(kind: type, commands: list[cmd.RecorderCommand]) -> list[Any]:
    return [c for c in commands if isinstance(c, kind)]


def test_a_kept_recording_becomes_the_prompts_message() -> None:
    call = Call()
    [ask] = _of(cmd.PlayPrompt, call.start())
    assert (ask.prompt.key, ask.prompt.app_id, ask.voice, ask.barge_in) == (
        "record_code",
        "VAsys",
        "swe",
        True,
    )
    call.finish_prompt()
    assert _of(cmd.Record, call.keys("1")) == []
    [record] = _of(cmd.Record, call.keys("2#"))
    assert record.app_id == "" and record.beep and record.stop_key == "#"
    assert call.flow.prompt is not None and call.flow.prompt.prompt_id == "PRnews"
    [back] = _of(cmd.PlayRecorded, call.recorded(3.0))
    assert back.barge_in
    call.finish_prompt()
    call.finish_prompt()
    assert call.said == ["record_code", "<recording>", "record_review"]
    [save] = _of(cmd.SavePromptMessage, call.keys("1"))
    assert (save.prompt_id, save.duration) == ("PRnews", 3.0)
    assert not call.flow.ended  # it waits to hear whether the save worked
    call.send(ev.PromptSaved(call.tick(), True))
    assert call.said[-1] == "record_saved"
    [hang] = _of(cmd.HangUp, call.finish_prompt())
    assert hang.reason == "saved" and call.flow.ended
    assert call.flow.outcome is not None
    assert (call.flow.outcome.kind, call.flow.outcome.target) == ("prompt_recorded", "PRnews")


def test_keys_stop_the_question_and_the_playback() -> None:
    call = Call()
    call.start()
    out = call.keys("2")  # during "enter the prompt number"
    assert _of(cmd.StopPrompt, out) and not call.flow.ended
    [record] = _of(cmd.Record, call.keys("#"))
    assert call.flow.prompt is not None and call.flow.prompt.prompt_id == "PRmenu"
    call.recorded()
    out = call.keys("1")  # while the recording plays back
    assert _of(cmd.StopPrompt, out) and _of(cmd.SavePromptMessage, out)


def test_two_records_again_and_star_cancels_keeping_the_old_message() -> None:
    call = Call()
    call.to_review()
    out = call.keys("2")
    assert _of(cmd.DiscardRecording, out) and _of(cmd.Record, out)
    assert not _of(cmd.SavePromptMessage, out)
    call.recorded(2.0)
    call.finish_prompt()
    call.finish_prompt()
    out = call.keys("*")
    assert _of(cmd.DiscardRecording, out)
    assert call.said[-1] == "goodbye"
    assert _of(cmd.HangUp, call.finish_prompt())
    assert call.flow.outcome is not None and call.flow.outcome.kind == "hangup"


def test_unknown_numbers_are_said_and_asked_again_a_bounded_number_of_times() -> None:
    call = Call()
    call.start()
    call.finish_prompt()
    for attempt in range(1, MAX_ATTEMPTS):
        out = call.keys("7#")  # another account's prompt: unknown here
        assert not _of(cmd.Record, out)
        assert call.said[-1] == "record_unknown"
        call.finish_prompt()
        assert call.said[-1] == "record_code"
        call.finish_prompt()
        assert not call.flow.ended, attempt
    call.keys("99#")
    call.finish_prompt()
    assert call.said[-3:] == ["record_code", "record_unknown", "goodbye"]
    assert _of(cmd.HangUp, call.finish_prompt())
    assert call.flow.outcome is not None and call.flow.outcome.kind == "hangup"


def test_a_number_keyed_without_hash_counts_when_the_caller_stops() -> None:
    call = Call()
    call.start()
    call.finish_prompt()
    call.keys("12")
    assert call.timer is not None
    out = call.send(ev.TimerFired(call.tick(), call.timer))
    assert _of(cmd.Record, out)


def test_a_refused_save_says_no_message_was_recorded() -> None:
    call = Call()
    call.to_review()
    call.keys("1")
    call.send(ev.PromptSaved(call.tick(), False))
    assert call.said[-1] == "no_message"
    assert _of(cmd.HangUp, call.finish_prompt())
    assert call.flow.outcome is not None and call.flow.outcome.kind == "hangup"


def test_hanging_up_or_a_stopping_node_saves_nothing() -> None:
    call = Call()
    call.start()
    call.finish_prompt()
    call.keys("12#")
    out = call.recorded(4.0, "hangup")
    assert _of(cmd.DiscardRecording, out) and not _of(cmd.SavePromptMessage, out)
    assert call.flow.outcome is not None and call.flow.outcome.kind == "caller_hangup"

    call = Call()
    call.start()
    call.finish_prompt()
    call.keys("12#")
    out = call.send(ev.EndRequested(call.tick(), "node stopping"))
    assert _of(cmd.StopRecording, out) and call.said[-1] == "goodbye"
    assert not _of(cmd.PlayRecorded, call.recorded(1.0, "ended"))
    assert _of(cmd.HangUp, call.finish_prompt())


def test_an_account_without_a_sysprompt_app_hears_the_defaults() -> None:
    call = Call(_config(sysprompt=False))
    [ask] = _of(cmd.PlayPrompt, call.start())
    assert (ask.prompt.key, ask.voice) == ("record_code", "en")


def test_events_before_the_start_are_refused() -> None:
    with pytest.raises(ValueError, match="has not started"):
        PromptRecorder(_config(), ACCOUNT, "7").handle(ev.DigitPressed(0.0, "1"))
