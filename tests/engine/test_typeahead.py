"""Keys pressed before the call's first menu takes keys are kept for it (type-ahead)."""

from __future__ import annotations

from openivr.engine import CallFlow
from openivr.engine.call import MAX_TYPEAHEAD
from openivr.engine.commands import PlayPrompt, StartTimer, StopPrompt, Transfer
from openivr.engine.events import (
    CallStarted,
    DigitPressed,
    PromptFinished,
    TimerFired,
    TransferFailed,
)

from .accounts import ALICE_SIP, CAROL_PHNUM, build, call_user, connect

# An announcement (no keys taken while it plays) that hands the call to the main menu.
INTRO = {
    "app_id": "VAintro",
    "app_type": "ivr",
    "name": "Intro",
    "play_welcome": "yes",
    "play_menu": "no",
    "final_action": connect("VAmain"),
}


def _plays(commands: list[object]) -> list[PlayPrompt]:
    return [c for c in commands if isinstance(c, PlayPrompt)]


def _intro_call(main: dict[str, object]) -> tuple[CallFlow, PlayPrompt]:
    call = CallFlow(build(main, apps=[INTRO]), "VAintro")
    (intro,) = _plays(call.handle(CallStarted(0.0)))
    assert intro.prompt.key == "welcome" and not intro.barge_in
    return call, intro


def test_a_key_at_once_stops_the_welcome_and_is_the_menu_choice() -> None:
    call = CallFlow(build({"menu": {"digit_2": call_user("9")}}), "VAmain")
    (welcome,) = _plays(call.handle(CallStarted(0.0)))
    out = call.handle(DigitPressed(0.0, "2"))
    assert out[0] == StopPrompt(welcome.play_id)
    (wait,) = _plays(out)
    assert wait.prompt.key == "please_wait"
    assert call.handle(PromptFinished(1.0, wait.play_id)) == [
        Transfer(CAROL_PHNUM, "user", "9", "VAmain")
    ]


def test_a_key_during_an_announcement_is_kept_and_chooses_in_the_menu_after_it() -> None:
    call, intro = _intro_call({"menu": {"digit_2": call_user("7")}})
    assert call.handle(DigitPressed(0.5, "2")) == []  # the announcement plays on
    out = call.handle(PromptFinished(4.0, intro.play_id))
    # The menu is entered and the kept key chooses at once: no welcome, no menu prompt.
    (wait,) = _plays(out)
    assert wait.prompt.key == "please_wait"
    assert call.handle(PromptFinished(5.0, wait.play_id)) == [
        Transfer(ALICE_SIP, "user", "7", "VAmain")
    ]
    keys = [(e.at, e.digit, e.text) for e in call.log if e.kind == "key"]
    assert keys == [
        (0.5, "2", "kept for the next menu"),
        (4.0, "2", "menu option 2 → call user 7"),
    ]


def test_an_extension_typed_ahead_is_dialled() -> None:
    call, intro = _intro_call({"get_extension": "yes"})
    for at, key in enumerate("101#"):
        assert call.handle(DigitPressed(0.5 + at / 10, key)) == []
    (wait,) = _plays(call.handle(PromptFinished(4.0, intro.play_id)))
    assert call.handle(PromptFinished(5.0, wait.play_id)) == [
        Transfer(ALICE_SIP, "user", "7", "VAmain")
    ]


def test_digits_typed_ahead_without_hash_wait_for_the_interdigit_timeout() -> None:
    call, intro = _intro_call({"get_extension": "yes"})
    for key in "101":
        call.handle(DigitPressed(1.0, key))
    out = call.handle(PromptFinished(4.0, intro.play_id))
    assert _plays(out) == []
    timer = [c for c in out if isinstance(c, StartTimer)][-1]  # each key starts it anew
    assert timer.purpose == "digits"
    (wait,) = _plays(call.handle(TimerFired(7.0, timer.timer_id)))
    assert wait.prompt.key == "please_wait"


def test_only_a_few_keys_are_kept() -> None:
    call, intro = _intro_call({"get_extension": "yes"})
    for key in "1234567890":
        call.handle(DigitPressed(1.0, key))
    ignored = [e.digit for e in call.log if e.kind == "key" and e.text.startswith("ignored")]
    assert ignored == ["9", "0"] and MAX_TYPEAHEAD == 8
    call.handle(PromptFinished(4.0, intro.play_id))
    assert any("collecting 12345678" == e.text for e in call.log)


def test_after_the_first_menu_keys_in_prompts_without_barge_in_are_ignored() -> None:
    call = CallFlow(build({"menu": {"digit_1": call_user("7")}, "play_welcome": "no"}), "VAmain")
    call.handle(CallStarted(0.0))
    (wait,) = _plays(call.handle(DigitPressed(1.0, "1")))
    assert call.handle(DigitPressed(1.5, "2")) == []  # during please-wait: not kept
    call.handle(PromptFinished(3.0, wait.play_id))
    (unavailable,) = _plays(call.handle(TransferFailed(10.0, "busy")))
    # Back in the menu, it is played: the '2' chose nothing.
    (menu,) = _plays(call.handle(PromptFinished(12.0, unavailable.play_id)))
    assert menu.prompt.key == "menu"
    assert [e.text for e in call.log if e.digit == "2"] == ["ignored"]


def test_keys_while_a_transfer_rings_before_any_menu_are_not_kept() -> None:
    intro = dict(INTRO, final_action=call_user("7"), menu={"timeout": connect("VAmain")})
    call = CallFlow(build({"menu": {"digit_2": call_user("9")}}, apps=[intro]), "VAintro")
    (welcome,) = _plays(call.handle(CallStarted(0.0)))
    (wait,) = _plays(call.handle(PromptFinished(3.0, welcome.play_id)))
    call.handle(PromptFinished(4.0, wait.play_id))
    assert call.handle(DigitPressed(5.0, "2")) == []  # ringing: a key chooses nothing
    (unavailable,) = _plays(call.handle(TransferFailed(9.0, "no_answer")))
    # The announcement's timeout entry leads to the menu, which plays: nothing was kept.
    out = call.handle(PromptFinished(10.0, unavailable.play_id))
    assert [p.prompt.key for p in _plays(out)] == ["welcome"]
    assert [e.text for e in call.log if e.digit == "2"] == ["ignored"]
