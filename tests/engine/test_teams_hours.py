"""Teams and opening hours in the call flow: who is rung when, what a caller hears when
nobody answers, and the closed branch of a menu."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from openivr.engine import CallFlow, PromptRef, StaticConfig, simulate
from openivr.engine.commands import PlayPrompt, Transfer
from openivr.engine.config import MenuAction, TeamConfig
from openivr.engine.events import CallStarted, PromptFinished, TransferAnswered, TransferFailed
from openivr.engine.graph import graph
from openivr.engine.hours import ScheduleConfig, instant
from openivr.engine.routing import Reachability
from openivr.engine.transcript import Transcript
from openivr.engine.validate import validate

from .accounts import ACCOUNT, ALICE_SIP, CAROL_PHNUM, OTHER_ACCOUNT, action, build, connect

SALES = "TMsales"


def seconds(prompt: PromptRef, voice: str) -> float:
    return 2.0


def with_team(
    config: StaticConfig,
    strategy: str = "order",
    members: tuple[str, ...] = ("7", "9"),
    **extra: Any,
) -> StaticConfig:
    team = TeamConfig(SALES, ACCOUNT, "Sales", members, strategy, **extra)
    config.teams[(ACCOUNT, SALES)] = team
    return config


def sales_menu(**extra: Any) -> StaticConfig:
    return build({"menu": {"digit_1": action("call", "csg", SALES)}})


def rung(t: Transcript) -> list[dict[str, Any]]:
    return [e.to_dict() for e in t.of_kind("transfer")]


def prompt_keys(t: Transcript) -> list[str | None]:
    return [e.data["key"] for e in t.of_kind("prompt")]


def test_order_rings_one_member_after_another_and_the_second_answers() -> None:
    config = with_team(sales_menu(), ring_seconds=15)
    t = simulate(config, "VAmain", "+4611", "+4622", ["1", {"team": "Carol", "after": 3}], seconds)
    first, second = rung(t)
    assert (first["user_id"], first["result"], first["ring_seconds"]) == ("7", "no_answer", 15)
    assert first["target"] == ALICE_SIP and first["attempt"] == 1
    assert (second["user_id"], second["result"], second["ring_seconds"]) == ("9", "answered", 3)
    assert second["at"] == pytest.approx(first["at"] + 15)
    assert "Alice (7)" in first["text"] and "team Sales, #1" in first["text"]
    assert t.outcome is not None and t.outcome.kind == "transferred"
    assert t.outcome.target == CAROL_PHNUM
    # Please wait before the team rings, as before any transfer from a menu.
    assert prompt_keys(t)[-1] == "please_wait"


def test_a_member_who_cannot_be_reached_now_is_passed_over_at_once() -> None:
    # Bob has no phone registered, no sip_uri and no phnum (route_transfer: no_phone).
    config = with_team(sales_menu(), members=("8", "9"))
    t = simulate(config, "VAmain", "", "", "1", seconds)
    bob, carol = rung(t)
    assert (bob["user_id"], bob["result"]) == ("8", "no_phone")
    assert bob["text"].startswith("cannot ring Bob (8): no phone registered")
    assert (carol["user_id"], carol["result"], carol["at"]) == ("9", "answered", bob["at"])
    # With a phone registered, Bob is rung like anyone else.
    t = simulate(
        config,
        "VAmain",
        "",
        "",
        "1",
        seconds,
        reachability=Reachability(registered=frozenset({"8"})),
    )
    assert [(e["user_id"], e["result"]) for e in rung(t)] == [("8", "answered")]


def test_all_rings_everyone_at_once_and_says_who_answered() -> None:
    config = with_team(sales_menu(), strategy="all")
    t = simulate(config, "VAmain", "", "", ["1", {"team": "103", "after": 5}], seconds)
    [ring] = rung(t)
    assert ring["members"] == ["7", "9"] and ring["target_kind"] == "team"
    assert ring["answered_by"] == "9" and ring["ring_seconds"] == 5
    assert "answered by Carol (9)" in ring["text"]
    assert t.outcome is not None and t.outcome.target == CAROL_PHNUM


def test_rotate_starts_after_the_member_who_answered_last() -> None:
    config = with_team(sales_menu(), strategy="rotate", members=("7", "9"))
    config.last_answered_by[SALES] = "7"
    t = simulate(config, "VAmain", "", "", ["1", {"team": "nobody"}], seconds)
    assert [e["user_id"] for e in rung(t)] == ["9", "7"]
    config.last_answered_by[SALES] = "9"
    t = simulate(config, "VAmain", "", "", "1", seconds)
    assert [e["user_id"] for e in rung(t)] == ["7"]


def test_a_busy_member_is_skipped_at_once_in_order() -> None:
    config = with_team(sales_menu())
    t = simulate(config, "VAmain", "", "", ["1", {"team": "Carol", "busy": ["Alice"]}], seconds)
    first, second = rung(t)
    assert first["result"] == "busy" and first["ring_seconds"] == 0
    assert "busy on another call, skipped" in first["text"]
    assert second["at"] == first["at"] and second["result"] == "answered"


def test_max_seconds_bounds_the_whole_team() -> None:
    config = with_team(sales_menu(), members=("7", "9"), ring_seconds=20, max_seconds=30)
    t = simulate(config, "VAmain", "", "", ["1", {"team": "nobody"}], seconds)
    assert [e["ring_seconds"] for e in rung(t)] == [20, 10]


def test_nobody_answers_then_all_busy_and_the_mailbox_takes_a_message() -> None:
    config = with_team(sales_menu(), no_answer=MenuAction("connect", "app", "VAvm"))
    t = simulate(config, "VAmain", "", "", ["1", {"team": "nobody"}, {"record": 6}], seconds)
    assert [e["result"] for e in rung(t)] == ["no_answer", "no_answer"]
    keys = prompt_keys(t)
    assert keys[keys.index("please_wait") + 1 :] == ["all_busy", "greeting", "goodbye"]
    assert t.outcome is not None and t.outcome.kind == "voicemail"
    assert t.outcome.app_id == "VAvm" and t.outcome.voicemail_seconds == 6


def test_nobody_answers_without_no_answer_is_a_failed_transfer() -> None:
    config = with_team(sales_menu())
    t = simulate(config, "VAmain", "", "", ["1", {"team": "nobody"}, {"hangup": True}], seconds)
    keys = prompt_keys(t)
    assert keys[keys.index("please_wait") + 1 :] == ["unavailable", "menu"]
    assert any("nobody in team 'Sales' answered" in e.text for e in t.of_kind("failure"))


def test_the_engine_asks_the_driver_to_skip_busy_members_only_in_turns() -> None:
    for strategy, kind, skip in (("order", "user", True), ("all", "team", False)):
        config = with_team(build(), strategy=strategy, ring_seconds=12)
        call = CallFlow(config, "", account_id=ACCOUNT, team_id=SALES)
        commands = call.handle(CallStarted(0.0, "+4611", "+4622"))
        [transfer] = [c for c in commands if isinstance(c, Transfer)]
        assert not [c for c in commands if isinstance(c, PlayPrompt)]  # no app: no please-wait
        assert (transfer.kind, transfer.skip_busy, transfer.ring_seconds) == (kind, skip, 12)
        assert transfer.team_id == SALES


def test_a_number_connected_to_a_team_hangs_up_when_nobody_answers() -> None:
    config = with_team(build(), members=("7",))
    call = CallFlow(config, "", account_id=ACCOUNT, team_id=SALES)
    call.handle(CallStarted(0.0))
    commands = call.handle(TransferFailed(12.0, "no_answer"))
    [play] = [c for c in commands if isinstance(c, PlayPrompt)]
    assert play.prompt.key == "unavailable"
    call.handle(PromptFinished(14.0, play.play_id))
    assert call.ended and call.outcome is not None and call.outcome.kind == "hangup"


def test_a_team_of_another_account_is_never_rung() -> None:
    config = build({"menu": {"digit_1": action("call", "csg", "TMtheirs")}})
    config.teams[(OTHER_ACCOUNT, "TMtheirs")] = TeamConfig(
        "TMtheirs", OTHER_ACCOUNT, "Theirs", ("70",)
    )
    t = simulate(config, "VAmain", "", "", ["1", {"hangup": True}], seconds)
    assert not rung(t)
    assert any("team TMtheirs not found" in e.text for e in t.of_kind("failure"))


def test_answered_by_comes_from_the_driver_for_all() -> None:
    config = with_team(build(), strategy="all")
    call = CallFlow(config, "", account_id=ACCOUNT, team_id=SALES)
    call.handle(CallStarted(0.0))
    call.handle(TransferAnswered(3.0, by="9"))
    assert call.outcome is not None and call.outcome.target == CAROL_PHNUM


# -- opening hours -------------------------------------------------------------------------

OFFICE = "SCoffice"
CLOSED_TO_MAILBOX = {"schedule_id": OFFICE, "closed_action": connect("VAvm")}


def with_hours(config: StaticConfig) -> StaticConfig:
    config.schedules[(ACCOUNT, OFFICE)] = ScheduleConfig.from_api(
        {
            "schedule_id": OFFICE,
            "name": "Office",
            "timezone": "Europe/Stockholm",
            "weekly": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}
            ],
            "closed_dates": ["2026-12-24"],
        },
        account_id=ACCOUNT,
    )
    return config


def hours_menu(open_hours: dict[str, Any]) -> StaticConfig:
    return with_hours(build({"menu": {"digit_1": connect("VAvm")}, "open_hours": open_hours}))


def run_at(config: StaticConfig, at: str, timeline: Any = ()) -> Transcript:
    return simulate(config, "VAmain", "", "", list(timeline), seconds, at=instant(at))


@pytest.mark.parametrize(
    ("at", "branch"),
    [
        ("2026-03-27T08:59:00+01:00", "closed"),  # Friday before Europe's switch
        ("2026-03-27T09:00:00+01:00", "open"),
        ("2026-03-30T08:59:00+02:00", "closed"),  # Monday after it
        ("2026-03-30T09:00:00+02:00", "open"),
    ],
)
def test_the_menu_or_the_closed_action_around_the_switch(at: str, branch: str) -> None:
    t = run_at(hours_menu(CLOSED_TO_MAILBOX), at, [{"hangup": True}])
    [decision] = t.to_dict()["hours"]
    assert decision["open"] is (branch == "open")
    entered = [e.data["app_id"] for e in t.of_kind("app")]
    assert entered == (["VAmain"] if branch == "open" else ["VAmain", "VAvm"])
    [told] = t.of_kind("hours")
    assert told.data["rule"] == decision["rule"] and told.text.startswith("schedule 'Office': ")


def test_closed_without_a_closed_action_says_so_and_hangs_up() -> None:
    t = run_at(hours_menu({"schedule_id": OFFICE}), "2026-12-24T10:00:00+01:00")
    assert prompt_keys(t) == ["closed"]
    assert t.to_dict()["hours"][0]["rule"] == "closed date 2026-12-24"
    assert t.outcome is not None and t.outcome.kind == "hangup"
    assert t.log[-1].text == "hung up: closed"


def test_a_failing_closed_action_never_returns_to_the_closed_menu() -> None:
    config = hours_menu({"schedule_id": OFFICE, "closed_action": action("call", "user", "8")})
    t = run_at(config, "2026-12-24T10:00:00+01:00")
    assert prompt_keys(t) == ["please_wait", "unavailable"]  # Bob cannot be rung: no phone
    assert t.outcome is not None and t.outcome.kind == "hangup"


def test_without_the_time_the_line_is_open() -> None:
    t = simulate(hours_menu(CLOSED_TO_MAILBOX), "VAmain", "", "", [{"hangup": True}], seconds)
    assert t.to_dict()["hours"] == [] and t.to_dict()["at"] is None
    assert [e.data["app_id"] for e in t.of_kind("app")] == ["VAmain"]


def test_hours_are_decided_when_the_call_reaches_the_menu() -> None:
    # A greeting app connects to the menu 30 s into the call: 16:59:45 + 30 s is 17:00:15.
    greeting = {
        "app_id": "VAgreet",
        "app_type": "ivr",
        "name": "Greeting",
        "play_menu": "no",
        "final_action": connect("VAmain"),
    }
    config = with_hours(
        build(
            {"open_hours": CLOSED_TO_MAILBOX, "menu": {"digit_1": connect("VAvm")}}, apps=[greeting]
        )
    )

    def long_greeting(prompt: PromptRef, voice: str) -> float:
        return 30.0 if prompt.app_id == "VAgreet" else 2.0

    t = simulate(
        config,
        "VAgreet",
        "",
        "",
        [{"hangup": True}],
        long_greeting,
        at=datetime.fromisoformat("2026-03-30T16:59:45+02:00"),
    )
    [decision] = t.to_dict()["hours"]
    assert decision["open"] is False and decision["local_time"].startswith("2026-03-30T17:00:15")


# -- validate and graph ----------------------------------------------------------------------


def codes(config: StaticConfig, app_id: str = "VAmain") -> dict[str, str]:
    return {p.code: p.field for p in validate(config, app_id)}


def test_validate_warns_about_teams_that_cannot_work() -> None:
    config = with_team(sales_menu(), members=())
    assert codes(config)["team_empty"] == "menu.digit_1"
    config = with_team(sales_menu(), members=("7", "8"))
    problems = [p for p in validate(config, "VAmain") if p.code == "member_unreachable"]
    assert [p.severity for p in problems] == ["warning"] and "Bob (8)" in problems[0].detail
    config = build({"menu": {"digit_1": action("call", "csg", "TMnope")}})
    assert codes(config)["team_not_found"] == "menu.digit_1"
    config = with_team(sales_menu(), no_answer=MenuAction("play", "prompt", "Pnope"))
    assert "prompt_not_found" in codes(config)
    assert "team_empty" not in codes(with_team(sales_menu()))


def test_validate_finds_a_no_answer_that_loops_back() -> None:
    # Sales' no_answer rings Overflow, whose no_answer plays an announcement calling Sales.
    loop_back = {
        "app_id": "VAbusy",
        "app_type": "ivr",
        "name": "Busy",
        "play_menu": "no",
        "final_action": action("call", "csg", SALES),
    }
    config = with_team(
        build({"menu": {"digit_1": action("call", "csg", SALES)}}, apps=[loop_back]),
        no_answer=MenuAction("call", "csg", "TMover"),
    )
    config.teams[(ACCOUNT, "TMover")] = TeamConfig(
        "TMover", ACCOUNT, "Overflow", ("9",), no_answer=MenuAction("connect", "app", "VAbusy")
    )
    [loop] = [p for p in validate(config, "VAmain") if p.code == "no_answer_loop"]
    assert "team Sales → team Overflow → announcement Busy → team Sales" in loop.detail
    # Back to a menu is not a loop: the caller chooses again.
    config = with_team(sales_menu(), no_answer=MenuAction("connect", "app", "VAmain"))
    assert "no_answer_loop" not in codes(config)


def test_validate_checks_opening_hours() -> None:
    assert "closed_action_reaches_nothing" not in codes(hours_menu(CLOSED_TO_MAILBOX))
    empty = codes(hours_menu({"schedule_id": OFFICE}))
    assert empty["closed_action_reaches_nothing"] == "open_hours.closed_action"
    itself = [
        p
        for p in validate(
            hours_menu({"schedule_id": OFFICE, "closed_action": connect("VAmain")}), "VAmain"
        )
        if p.code == "closed_action_reaches_nothing"
    ]
    assert itself[0].severity == "error"
    missing = hours_menu({"schedule_id": OFFICE, "closed_action": connect("VAgone")})
    assert codes(missing)["app_not_found"] == "open_hours.closed_action"
    config = hours_menu(CLOSED_TO_MAILBOX)
    config.schedules[(ACCOUNT, OFFICE)] = ScheduleConfig.from_api(
        {"schedule_id": OFFICE, "name": "Never", "closed_dates": ["2026-01-01"]},
        account_id=ACCOUNT,
    )
    assert codes(config)["schedule_never_open"] == "open_hours.schedule_id"
    gone = build({"open_hours": {"schedule_id": "SCgone"}, "menu": {"digit_1": connect("VAvm")}})
    assert codes(gone)["schedule_not_found"] == "open_hours.schedule_id"


def test_graph_shows_teams_and_the_closed_branch() -> None:
    config = with_hours(
        with_team(
            build(
                {
                    "menu": {"digit_1": action("call", "csg", SALES)},
                    "open_hours": {"schedule_id": OFFICE, "closed_action": connect("VAvm")},
                }
            ),
            no_answer=MenuAction("connect", "app", "VAvm"),
        )
    )
    drawn = graph(config, "VAmain")
    edges = {(e.source, e.target, e.label) for e in drawn.edges}
    assert ("app:VAmain", "app:VAvm", "closed (Office)") in edges
    assert ("app:VAmain", f"team:{SALES}", "1") in edges
    # Which branch of the opening hours each way out of the menu is on.
    branches = {(e.label, e.branch) for e in drawn.edges if e.source == "app:VAmain"}
    assert branches == {("closed (Office)", "closed"), ("1", "open")}
    assert {(e.label, e.branch) for e in drawn.edges if e.source != "app:VAmain"} <= {
        (label, "") for label in ("#1", "#2", "no answer")
    }
    assert '-.->|"closed (Office)"|' in drawn.to_mermaid()
    assert 'label="closed (Office)", style=dashed' in drawn.to_dot()
    assert (f"team:{SALES}", "user:7", "#1") in edges
    assert (f"team:{SALES}", "user:9", "#2") in edges
    assert (f"team:{SALES}", "app:VAvm", "no answer") in edges
    assert drawn.nodes[f"team:{SALES}"].label == "team Sales (order)"
    assert "team Sales (order)" in drawn.to_mermaid() and "box3d" in drawn.to_dot()
    # Without a no_answer the team falls back to the menu; closed without an action hangs up.
    config = with_hours(
        with_team(
            build(
                {
                    "menu": {"digit_1": action("call", "csg", SALES)},
                    "open_hours": {"schedule_id": OFFICE},
                }
            ),
            strategy="all",
        )
    )
    edges = {(e.source, e.target, e.label) for e in graph(config, "VAmain").edges}
    assert (f"team:{SALES}", "app:VAmain", "no answer") in edges
    assert (f"team:{SALES}", "user:7", "rings") in edges
    assert ("app:VAmain", "hangup", "closed (Office)") in edges
