"""The simulator: timelines, transcript shape, audio plan, bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openivr.engine import PromptRef, StaticConfig, TimelineError, parse_timeline, simulate
from openivr.engine.graph import graph
from openivr.engine.routing import Reachability
from openivr.engine.simulator import SimulationError
from openivr.engine.timeline import TIMELINE_SCHEMA, Step
from openivr.engine.transcript import Transcript
from openivr.engine.validate import validate

from .accounts import action, build, call_user, play


def by_key(prompt: PromptRef, voice: str) -> float:
    return {"welcome": 3.0, "menu": 4.0}.get(prompt.key or "", 1.5)


def test_timeline_forms_give_the_same_steps() -> None:
    expected = [Step("key", key="1"), Step("key", key="2"), Step("key", key="#")]
    assert parse_timeline("12#") == expected
    assert parse_timeline({"keys": "12#"}) == expected
    assert parse_timeline(["12", {"key": "#"}]) == expected
    assert parse_timeline({"steps": [{"key": 1}, "2#"]}) == expected


@pytest.mark.parametrize(
    ("timeline", "message"),
    [
        ("12x", "'x' is not a key"),
        ([{"key": "1", "after": -1}], r"timeline\[0\]\.after: must not be negative"),
        ([{"key": "1", "after": "soon"}], r"timeline\[0\]\.after: must be a number"),
        ([{"key": "1", "hangup": True}], "exactly one of"),
        ([{"record": 5, "during": "menu"}], "not allowed in a record step"),
        ([{"transfer": "maybe"}], "answered, busy, no_answer, unreachable"),
        ([{"record": 5, "end": "never"}], "key, silence, hangup"),
        ([{"hangup": False}], "must be true"),
        ({"keys": "1", "steps": []}, "exactly one of 'keys'"),
        (42, "must be a string of keys"),
        ([3], "must be an object or a string"),
    ],
)
def test_bad_timelines_name_the_step_and_field(timeline: object, message: str) -> None:
    with pytest.raises(TimelineError, match=message):
        parse_timeline(timeline)


def test_schema_is_a_json_schema_document() -> None:
    assert json.loads(json.dumps(TIMELINE_SCHEMA))["title"].startswith("OpenIVR")


def test_transcript_is_json_and_audio_covers_the_whole_call_without_gaps() -> None:
    config = build({"menu": {"digit_1": call_user("7"), "digit_3": play("P1")}})
    t = simulate(
        config,
        "VAmain",
        "+4611",
        "+4622",
        [{"key": "3", "during": "menu", "after": 1}, {"key": "1", "after": 2}],
        by_key,
    )
    doc = json.loads(json.dumps(t.to_dict()))
    assert doc["outcome"]["kind"] == "transferred"
    position = 0.0
    for segment in t.audio:
        assert segment.start == pytest.approx(position)
        position += segment.duration
    assert position == pytest.approx(t.total_seconds)
    kinds = [s.kind for s in t.audio]
    assert kinds == ["prompt", "prompt", "prompt", "prompt", "silence", "prompt", "ringback"]
    menu_cut = t.audio[1]
    assert (menu_cut.duration, menu_cut.full_duration) == (1.0, 4.0)


def test_render_text_reads_like_the_call() -> None:
    config = build({"menu": {"digit_1": call_user("7")}})
    text = simulate(config, "VAmain", "+4611", "+4622", "51", by_key).render_text()
    assert "key 5" in text and "invalid" in text
    assert "menu option 1 → call user 7" in text
    assert text.splitlines()[-1].startswith("Outcome: transferred to sip:alice@127.0.0.1")


def test_a_step_waiting_for_a_prompt_that_never_plays_is_reported_unused() -> None:
    config = build({"menu": {"digit_1": call_user("7")}})
    t = simulate(config, "VAmain", "", "", [{"key": "1", "during": "no such prompt"}], by_key)
    assert t.outcome is not None and t.outcome.kind == "hangup"
    assert t.unused_steps == 1
    assert "1 timeline steps not used" in t.render_text()


def test_the_event_cap_stops_a_run() -> None:
    config = build({"menu": {"digit_1": call_user("7")}})
    t = simulate(config, "VAmain", "", "", "", by_key, max_events=3)
    assert t.truncated and "too many events" in t.render_text()


@pytest.mark.parametrize("duration", [-1.0, float("nan"), "long"])
def test_a_bad_prompt_duration_is_a_clear_error(duration: object) -> None:
    config = build({"menu": {"digit_1": call_user("7")}})
    with pytest.raises(SimulationError, match="prompt_duration"):
        simulate(config, "VAmain", "", "", "", lambda p, v: duration)  # type: ignore[arg-type,return-value]


def test_unknown_or_foreign_apps_are_refused() -> None:
    config = build()
    with pytest.raises(SimulationError, match="no voice app 'VAnope'"):
        simulate(config, "VAnope", "", "", "", by_key)
    with pytest.raises(SimulationError, match="no voice app 'VAother'"):
        simulate(config, "VAother", "", "", "", by_key, account_id="100")
    with pytest.raises(SimulationError, match="sysprompt"):
        simulate(config, "VAsys", "", "", "", by_key)


def test_prompt_text_and_voice_reach_the_transcript() -> None:
    config = build({"menu": {"digit_3": play("P1")}, "voice": "en-fe"})
    t = simulate(config, "VAmain", "", "", ["3", {"hangup": True}], by_key)
    custom = next(e for e in t.of_kind("prompt") if e.data["prompt_id"] == "P1")
    assert custom.data["prompt_text"] == "We are open nine to five"
    assert custom.data["voice"] == "en-fe"


def _validated(config: StaticConfig, reach: Reachability) -> dict[str, tuple[str, str]]:
    return {p.field: (p.severity, p.code) for p in validate(config, "VAmain", reach)}


def _ringing(transcript: Transcript) -> list[tuple[str, Any]]:
    return [(e.text, e.data.get("result")) for e in transcript.of_kind("transfer")]


def test_a_user_reachable_only_on_a_registered_phone_is_rung_and_validate_agrees() -> None:
    config = build({"menu": {"digit_1": call_user("8")}})  # no sip_uri, no phnum
    now_registered = Reachability(registered=frozenset({"8"}))
    t = simulate(config, "VAmain", "+4611", "+4622", "1", reachability=now_registered)
    assert t.outcome is not None and t.outcome.kind == "transferred"
    assert _validated(config, now_registered) == {}
    # The phone unregistered: the same call fails now, and validate says so, as a warning.
    nobody = Reachability()
    t = simulate(config, "VAmain", "+4611", "+4622", ["1", {"hangup": True}], reachability=nobody)
    [(text, result)] = _ringing(t)
    assert "no phone registered" in text and result == "no_phone"
    assert [e.data["key"] for e in t.of_kind("prompt")][-2:] == ["unavailable", "menu"]
    severity, code = _validated(config, nobody)["menu.digit_1"]
    assert (severity, code) == ("warning", "user_unreachable")


def test_a_number_without_a_trunk_fails_in_the_simulator_and_in_validate() -> None:
    config = build(
        {
            "menu": {
                "digit_1": action("call", "phnum", "+46812345678"),
                "digit_2": action("call", "other", "+46812345679"),
                "digit_3": call_user("9"),  # reached on a number only
            }
        }
    )
    no_trunk = Reachability(trunk=False)
    for key in "12":
        t = simulate(
            config, "VAmain", "+4611", "+4622", [key, {"hangup": True}], reachability=no_trunk
        )
        [(text, result)] = _ringing(t)
        assert "SIP trunk" in text and result == "no_trunk"
        assert t.outcome is not None and t.outcome.kind == "caller_hangup"
    problems = _validated(config, no_trunk)
    assert problems["menu.digit_1"] == ("error", "no_trunk")
    assert problems["menu.digit_2"] == ("error", "no_trunk")
    assert problems["menu.digit_3"] == ("warning", "user_unreachable")
    with_trunk = Reachability(trunk=True)
    t = simulate(config, "VAmain", "+4611", "+4622", "1", reachability=with_trunk)
    assert t.outcome is not None and t.outcome.target == "+46812345678"
    assert _validated(config, with_trunk) == {}


@pytest.mark.parametrize("address", ["VAvm@openivr.local", "sip:VAvm@openivr.local"])
def test_calling_an_apps_own_sip_address_enters_the_app(address: str) -> None:
    config = build({"menu": {"digit_1": action("call", "other", address)}})
    t = simulate(config, "VAmain", "+4611", "+4622", ["1", {"record": 3}])
    assert [e.data["app_id"] for e in t.of_kind("app")] == ["VAmain", "VAvm"]
    assert t.of_kind("transfer") == []  # nothing rang: the call stayed on the node
    assert t.outcome is not None and t.outcome.kind == "voicemail"
    assert _validated(config, Reachability()) == {}
    assert "app:VAvm" in graph(config, "VAmain").nodes


def test_other_takes_a_sip_address_that_is_called_as_one() -> None:
    config = build(
        {
            "menu": {
                "digit_1": action("call", "other", "desk@pbx.example.com"),
                # Another account's app at the same domain is not entered.
                "digit_2": action("call", "other", "VAother@openivr.local"),
            }
        }
    )
    t = simulate(config, "VAmain", "+4611", "+4622", "1")
    assert t.outcome is not None and t.outcome.target == "sip:desk@pbx.example.com"
    t = simulate(config, "VAmain", "+4611", "+4622", "2")
    assert t.outcome is not None and t.outcome.target == "sip:VAother@openivr.local"


def test_a_key_at_the_first_moment_of_the_call_stops_the_welcome_and_chooses() -> None:
    config = build({"menu": {"digit_1": call_user("7")}})
    t = simulate(config, "VAmain", "+4611", "+4622", [{"key": "1", "at": 0}], by_key)
    [welcome, wait] = [e for e in t.entries if e.kind == "prompt"]
    assert (welcome.data["key"], welcome.data["interrupted"], welcome.data["duration"]) == (
        "welcome",
        True,
        0.0,
    )
    assert wait.data["key"] == "please_wait" and t.outcome is not None
    assert t.outcome.kind == "transferred"


def test_a_key_at_once_during_an_announcement_chooses_in_the_menu_after_it() -> None:
    intro = {
        "app_id": "VAintro",
        "app_type": "ivr",
        "name": "Intro",
        "play_menu": "no",
        "final_action": action("connect", "app", "VAmain"),
    }
    config = build({"menu": {"digit_1": call_user("7")}}, apps=[intro])
    t = simulate(config, "VAintro", "+4611", "+4622", [{"key": "1", "at": 0.2}], by_key)
    # The announcement plays whole; the menu takes the key kept meanwhile without a word.
    played = [
        (e.data["app_id"], e.data["key"], e.data["interrupted"])
        for e in t.entries
        if e.kind == "prompt"
    ]
    assert played == [("VAintro", "welcome", False), ("VAmain", "please_wait", False)]
    keys = [(e.at, e.text) for e in t.entries if e.kind == "key"]
    assert keys == [(0.2, "kept for the next menu"), (3.0, "menu option 1 → call user 7")]


def test_at_is_a_moment_of_the_call_not_combined_with_after_or_during() -> None:
    assert parse_timeline([{"key": "2", "at": 0}]) == [Step("key", key="2", at=0.0)]
    with pytest.raises(TimelineError, match=r"timeline\[0\]\.at: .*without after or during"):
        parse_timeline([{"key": "2", "at": 1, "during": "menu"}])
