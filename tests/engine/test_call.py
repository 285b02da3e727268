"""The state machine driven event by event, as the SIP server drives it."""

from __future__ import annotations

import pytest

from openivr.engine import CallFlow, CallFlowError
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
from openivr.engine.events import (
    CallerHungUp,
    CallStarted,
    DigitPressed,
    EndRequested,
    PromptFinished,
    RecordingFinished,
    TimerFired,
    TransferAnswered,
    TransferFailed,
)

from .accounts import ALICE_SIP, build, call_user


def _plays(commands: list[object]) -> list[PlayPrompt]:
    return [c for c in commands if isinstance(c, PlayPrompt)]


def test_call_start_enters_the_app_and_plays_welcome_with_barge_in() -> None:
    call = CallFlow(build({"menu": {"digit_1": call_user("7")}}), "VAmain")
    out = call.handle(CallStarted(0.0, "+4611", "+4622"))
    assert isinstance(out[0], EnterApp) and out[0].app_id == "VAmain"
    assert any(isinstance(c, CollectDigits) for c in out)
    (welcome,) = _plays(out)
    assert welcome.prompt.key == "welcome" and welcome.barge_in and welcome.voice == "en"
    assert call.account_id == "100"


def test_barge_in_stops_the_prompt_and_a_stale_prompt_end_is_ignored() -> None:
    call = CallFlow(build({"menu": {"digit_1": call_user("7")}}), "VAmain")
    (welcome,) = _plays(call.handle(CallStarted(0.0)))
    out = call.handle(DigitPressed(0.7, "1"))
    assert out[0] == StopPrompt(welcome.play_id)
    (wait,) = _plays(out)
    assert wait.prompt.key == "please_wait" and not wait.barge_in
    # The driver's PromptFinished for the stopped welcome arrives late: nothing happens.
    assert call.handle(PromptFinished(0.8, welcome.play_id)) == []
    out = call.handle(PromptFinished(2.7, wait.play_id))
    assert out == [Transfer(ALICE_SIP, "user", "7", "VAmain")]
    assert call.handle(TransferAnswered(5.0)) == []
    assert call.ended and call.outcome is not None
    assert (call.outcome.kind, call.outcome.target) == ("transferred", ALICE_SIP)


def test_menu_waits_with_a_timer_and_a_key_cancels_it() -> None:
    call = CallFlow(build({"menu": {"digit_1": call_user("7")}, "play_welcome": "no"}), "VAmain")
    (menu,) = _plays(call.handle(CallStarted(0.0)))
    out = call.handle(PromptFinished(3.0, menu.play_id))
    (timer,) = [c for c in out if isinstance(c, StartTimer)]
    assert timer.seconds == 5 and timer.purpose == "menu"
    out = call.handle(DigitPressed(4.0, "1"))
    assert out[0] == CancelTimer(timer.timer_id)
    # The cancelled timer firing anyway changes nothing.
    assert call.handle(TimerFired(8.0, timer.timer_id)) == []


def test_timeout_plays_no_input_in_the_error_voice_then_the_repeat_voice() -> None:
    call = CallFlow(build({"menu": {"digit_1": call_user("7")}, "play_welcome": "no"}), "VAmain")
    voices = []
    (menu,) = _plays(call.handle(CallStarted(0.0)))
    now = 0.0
    for _ in range(2):
        now += 2
        timer = next(
            c for c in call.handle(PromptFinished(now, menu.play_id)) if isinstance(c, StartTimer)
        )
        now += 5
        (no_input,) = _plays(call.handle(TimerFired(now, timer.timer_id)))
        voices.append((no_input.prompt.prompt_id, no_input.voice))
        now += 2
        (menu,) = _plays(call.handle(PromptFinished(now, no_input.play_id)))
    assert voices == [("VAsys.no_input", "fr-fe"), ("VAsys.no_input", "spa")]


def test_transfer_failure_returns_to_the_menu_with_unavailable() -> None:
    call = CallFlow(build({"menu": {"digit_1": call_user("7")}, "play_welcome": "no"}), "VAmain")
    call.handle(CallStarted(0.0))
    (wait,) = _plays(call.handle(DigitPressed(1.0, "1")))
    call.handle(PromptFinished(3.0, wait.play_id))
    (unavailable,) = _plays(call.handle(TransferFailed(10.0, "unreachable")))
    assert unavailable.prompt.prompt_id == "VAsys.unavailable" and unavailable.voice == "en-uk-fe"
    (menu,) = _plays(call.handle(PromptFinished(12.0, unavailable.play_id)))
    assert menu.prompt.key == "menu"
    assert [e.text for e in call.log if e.kind == "failure"] == [
        f"transfer to {ALICE_SIP} failed: unreachable"
    ]


def test_mailbox_records_with_limits_and_keeps_the_message() -> None:
    call = CallFlow(build(), "VAvm")
    (greeting,) = _plays(call.handle(CallStarted(0.0)))
    assert greeting.voice == "swe" and not greeting.barge_in
    (record,) = call.handle(PromptFinished(2.0, greeting.play_id))
    assert record == Record("VAvm", 120.0, max_silence=5.0, stop_key="#", beep=True)
    out = call.handle(RecordingFinished(20.0, 17.5, "stop_key"))
    assert out[0] == KeepVoicemail("VAvm", 17.5)
    (goodbye,) = _plays(out)
    assert call.handle(PromptFinished(22.0, goodbye.play_id)) == [HangUp("message taken")]
    assert call.outcome is not None and call.outcome.kind == "voicemail"
    assert call.outcome.voicemail_seconds == 17.5


def test_hangup_while_recording_keeps_the_message_even_without_a_length() -> None:
    call = CallFlow(build(), "VAvm")
    (greeting,) = _plays(call.handle(CallStarted(0.0)))
    call.handle(PromptFinished(2.0, greeting.play_id))
    assert call.handle(CallerHungUp(11.0)) == [KeepVoicemail("VAvm", 9.0)]
    assert call.outcome is not None and call.outcome.kind == "voicemail"


def test_short_recording_is_discarded_and_the_caller_is_told_no_message_was_recorded() -> None:
    call = CallFlow(build(), "VAvm")
    (greeting,) = _plays(call.handle(CallStarted(0.0)))
    call.handle(PromptFinished(2.0, greeting.play_id))
    out = call.handle(RecordingFinished(2.9, 0.4, "stop_key"))
    assert out[0] == DiscardRecording("VAvm", 0.4)
    (told,) = _plays(out)
    # A system message, in the sysprompt app's mailbox voice: not the mailbox's "thank you".
    assert told.prompt.prompt_id == "VAsys.no_message" and not told.barge_in
    assert call.handle(PromptFinished(5.0, told.play_id)) == [HangUp("no message left")]
    assert call.outcome is not None and call.outcome.kind == "hangup"


def test_ending_a_recording_keeps_the_message_and_says_goodbye_when_there_is_time() -> None:
    call = CallFlow(build(), "VAvm")
    (greeting,) = _plays(call.handle(CallStarted(0.0)))
    call.handle(PromptFinished(2.0, greeting.play_id))
    assert call.handle(EndRequested(30.0, "node stopping")) == [StopRecording("VAvm")]
    out = call.handle(RecordingFinished(30.1, 27.5, "ended"))
    assert out[0] == KeepVoicemail("VAvm", 27.5)
    (goodbye,) = _plays(out)
    assert goodbye.prompt.prompt_id == "VAvm.goodbye"
    assert call.handle(PromptFinished(33.0, goodbye.play_id)) == [HangUp("node stopping")]
    assert call.outcome is not None
    assert (call.outcome.kind, call.outcome.voicemail_seconds) == ("voicemail", 27.5)


def test_ending_a_recording_at_once_keeps_the_message_without_a_word() -> None:
    call = CallFlow(build(), "VAvm")
    (greeting,) = _plays(call.handle(CallStarted(0.0)))
    call.handle(PromptFinished(2.0, greeting.play_id))
    assert call.handle(EndRequested(9.0, "node stopping", at_once=True)) == [StopRecording("VAvm")]
    out = call.handle(RecordingFinished(9.0, 6.5, "ended"))
    assert out == [KeepVoicemail("VAvm", 6.5), HangUp("node stopping")]
    assert call.outcome is not None and call.outcome.kind == "voicemail"


def test_a_second_request_to_end_at_once_cuts_the_goodbye() -> None:
    call = CallFlow(build(), "VAvm")
    (greeting,) = _plays(call.handle(CallStarted(0.0)))
    call.handle(PromptFinished(2.0, greeting.play_id))
    call.handle(EndRequested(5.0, "node stopping"))
    (goodbye,) = _plays(call.handle(RecordingFinished(5.0, 3.0, "ended")))
    assert call.handle(EndRequested(6.0, "node stopping")) == []  # nothing new
    out = call.handle(EndRequested(6.5, "node stopping", at_once=True))
    assert out == [StopPrompt(goodbye.play_id), HangUp("node stopping")]
    assert call.outcome is not None and call.outcome.kind == "voicemail"


def test_ending_a_call_in_a_menu_says_the_system_goodbye() -> None:
    call = CallFlow(build({"menu": {"digit_1": call_user("7")}}), "VAmain")
    (welcome,) = _plays(call.handle(CallStarted(0.0)))
    out = call.handle(EndRequested(1.0, "node stopping"))
    assert out[0] == StopPrompt(welcome.play_id)
    (goodbye,) = _plays(out)
    assert goodbye.prompt.prompt_id == "VAsys.goodbye"
    assert call.handle(DigitPressed(1.5, "1")) == []  # no more menu
    assert call.handle(PromptFinished(3.0, goodbye.play_id)) == [HangUp("node stopping")]
    assert call.outcome is not None and call.outcome.kind == "hangup"


def test_a_ringing_transfer_may_still_answer_but_a_failure_no_longer_returns_to_the_menu() -> None:
    call = CallFlow(build({"menu": {"digit_1": call_user("7")}, "play_welcome": "no"}), "VAmain")
    call.handle(CallStarted(0.0))
    (wait,) = _plays(call.handle(DigitPressed(1.0, "1")))
    call.handle(PromptFinished(3.0, wait.play_id))
    assert call.handle(EndRequested(4.0, "node stopping")) == []
    (unavailable,) = _plays(call.handle(TransferFailed(6.0, "busy")))
    assert unavailable.prompt.prompt_id == "VAsys.unavailable"
    assert call.handle(PromptFinished(8.0, unavailable.play_id)) == [HangUp("node stopping")]


def test_caller_hangup_stops_prompt_and_timer_and_later_events_are_ignored() -> None:
    call = CallFlow(build({"menu": {"digit_1": call_user("7")}}), "VAmain")
    (welcome,) = _plays(call.handle(CallStarted(0.0)))
    assert call.handle(CallerHungUp(1.0)) == [StopPrompt(welcome.play_id)]
    assert call.outcome is not None and call.outcome.kind == "caller_hangup"
    assert call.handle(DigitPressed(2.0, "1")) == []


def test_bad_events_get_clear_errors() -> None:
    call = CallFlow(build(), "VAmain")
    with pytest.raises(CallFlowError, match="CallStarted"):
        call.handle(DigitPressed(0.0, "1"))
    call.handle(CallStarted(1.0))
    with pytest.raises(ValueError, match="keypad"):
        call.handle(DigitPressed(1.5, "x"))
    with pytest.raises(ValueError, match="go back"):
        call.handle(DigitPressed(0.5, "1"))
    with pytest.raises(ValueError, match="busy, no_answer, unreachable"):
        call.handle(TransferFailed(2.0, "weird"))
    with pytest.raises(TypeError, match="not a call event"):
        call.handle("1")  # type: ignore[arg-type]
    # DTMF A-D exist on the wire; they are ignored, not an error.
    assert call.handle(DigitPressed(2.0, "A")) == []


def test_unknown_entry_app_says_unavailable_and_hangs_up() -> None:
    call = CallFlow(build(), "VAnothing", account_id="100")
    (unavailable,) = _plays(call.handle(CallStarted(0.0)))
    assert unavailable.prompt.prompt_id == "VAsys.unavailable"
    assert call.handle(PromptFinished(2.0, unavailable.play_id)) == [HangUp("no such app")]


def test_entry_app_of_another_account_is_refused() -> None:
    call = CallFlow(build(), "VAother", account_id="100")
    (unavailable,) = _plays(call.handle(CallStarted(0.0)))
    assert unavailable.prompt.account_id == "100"
    assert [e.kind for e in call.log] == ["failure"]
