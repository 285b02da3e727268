"""The simulator: timelines, transcript shape, audio plan, bad input."""

from __future__ import annotations

import json

import pytest

from openivr.engine import PromptRef, TimelineError, parse_timeline, simulate
from openivr.engine.simulator import TIMELINE_SCHEMA, SimulationError, Step

from .accounts import build, call_user, play


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
