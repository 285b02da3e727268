"""Simulated calls through the HTTP API with teams and opening hours: the instant a call is made
(`at`) across Europe's and the US's clock changes and past midnight, what the transcript says
about the hours and the team's rings, and the new system prompts in every voice."""

from __future__ import annotations

from typing import Any

import pytest

from openivr.audio.texts import default_text
from openivr.engine.vocabulary import VOICES
from tests.conftest import Account, RunningServer


def _apps(server: RunningServer, acc: Account) -> dict[str, dict[str, Any]]:
    r = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
    return {a["name"]: a for a in r.json()["response"]}


def _post(server: RunningServer, acc: Account, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = server.client.post(f"/account/{acc.account_id}{path}", headers=acc.headers, json=body)
    assert r.status_code == 200, r.text
    return dict(r.json()["response"])


def _put(server: RunningServer, acc: Account, path: str, body: dict[str, Any]) -> None:
    r = server.client.put(f"/account/{acc.account_id}{path}", headers=acc.headers, json=body)
    assert r.status_code == 200, r.text


def _simulate(
    server: RunningServer, acc: Account, app_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    return _post(server, acc, f"/voiceapp/{app_id}/simulate", body)


def _menu_with_hours(
    server: RunningServer, acc: Account, schedule: dict[str, Any], closed_to_mailbox: bool = True
) -> tuple[str, str, str]:
    """(menu, mailbox, schedule id): the Main menu follows the schedule; closed → the mailbox."""
    apps = _apps(server, acc)
    menu, box = apps["Main menu"]["app_id"], apps["Voice Mail"]["app_id"]
    made = _post(server, acc, "/schedule", schedule)
    hours: dict[str, Any] = {"schedule_id": made["schedule_id"]}
    if closed_to_mailbox:
        hours["closed_action"] = {"action": "connect", "to": "app", "id": box}
    _put(server, acc, f"/voiceapp/{menu}", {"open_hours": hours})
    return menu, box, made["schedule_id"]


def _branch(server: RunningServer, acc: Account, menu: str, box: str, at: str) -> str:
    """'open' or 'closed': what a caller at `at` gets, checked on every side of the transcript."""
    t = _simulate(server, acc, menu, {"at": at, "timeline": [{"hangup": True, "after": 1}]})
    [decision] = t["hours"]
    entered = [e["app_id"] for e in t["entries"] if e["kind"] == "app"]
    # The decision, where the call went, and what the transcript says all agree.
    assert entered == ([menu] if decision["open"] else [menu, box]), (at, decision, entered)
    [said] = [e for e in t["entries"] if e["kind"] == "hours"]
    assert said["rule"] == decision["rule"]
    assert ("open (" if decision["open"] else "closed (") in said["text"], said
    return "open" if decision["open"] else "closed"


NINE_TO_FIVE_NEW_YORK = {
    "name": "New York office",
    "timezone": "America/New_York",
    "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}],
}


def test_a_call_at_0859_and_0900_around_the_us_switches(any_server: RunningServer) -> None:
    acc = any_server.account()
    menu, box, _ = _menu_with_hours(any_server, acc, NINE_TO_FIVE_NEW_YORK)
    cases = [
        # Clocks went forward on Sunday 2026-03-08: EST (-05:00) before, EDT (-04:00) after.
        ("2026-03-06T08:59:00-05:00", "closed"),
        ("2026-03-06T09:00:00-05:00", "open"),
        ("2026-03-09T08:59:00-04:00", "closed"),
        ("2026-03-09T09:00:00-04:00", "open"),
        ("2026-03-06T13:30:00Z", "closed"),  # Fri 08:30 EST ...
        ("2026-03-09T13:30:00Z", "open"),  # ... the same UTC time on Monday is 09:30 EDT
        # Back on Sunday 2026-11-01.
        ("2026-10-30T12:59:00Z", "closed"),  # Fri 08:59 EDT
        ("2026-10-30T13:00:00Z", "open"),  # Fri 09:00 EDT
        ("2026-11-02T13:59:00Z", "closed"),  # Mon 08:59 EST: this UTC time was open on Friday
        ("2026-11-02T14:00:00Z", "open"),  # Mon 09:00 EST
    ]
    got = [(at, _branch(any_server, acc, menu, box, at)) for at, _ in cases]
    assert got == cases


def test_a_night_past_midnight_and_across_europes_spring_switch(server: RunningServer) -> None:
    acc = server.account()
    menu, box, _ = _menu_with_hours(
        server,
        acc,
        {
            "name": "Night line",
            "timezone": "Europe/Stockholm",
            "weekly": [{"days": ["sat"], "from": "22:00", "to": "06:00"}],
        },
    )
    cases = [
        ("2026-03-28T21:59:00+01:00", "closed"),  # Saturday before the night
        ("2026-03-28T22:00:00+01:00", "open"),
        ("2026-03-29T01:59:00+01:00", "open"),  # the last minute before 02:00 becomes 03:00
        ("2026-03-29T03:00:00+02:00", "open"),
        ("2026-03-29T05:59:00+02:00", "open"),  # Sunday morning: still Saturday's night
        ("2026-03-29T06:00:00+02:00", "closed"),
        ("2026-03-29T22:00:00+02:00", "closed"),  # Sunday night is not Saturday's
    ]
    got = [(at, _branch(server, acc, menu, box, at)) for at, _ in cases]
    assert got == cases
    t = _simulate(server, acc, menu, {"at": "2026-03-29T05:59:00+02:00", "timeline": []})
    assert t["hours"][0]["rule"] == "weekly sat 22:00-06:00"


def test_christmas_eve_is_closed_and_the_transcript_says_by_which_rule(
    server: RunningServer,
) -> None:
    acc = server.account()
    office = dict(NINE_TO_FIVE_NEW_YORK, name="Office", timezone="Europe/Stockholm")
    office["closed_dates"] = ["2026-12-24"]
    # No closed action: the caller hears "we are closed" and the call ends.
    menu, _box, schedule = _menu_with_hours(server, acc, office, closed_to_mailbox=False)
    t = _simulate(server, acc, menu, {"at": "2026-12-24T10:00:00+01:00", "timeline": []})
    assert t["at"].startswith("2026-12-24T10:00:00")
    [decision] = t["hours"]
    assert decision["open"] is False and decision["schedule_id"] == schedule
    assert decision["rule"] == "closed date 2026-12-24"
    [said] = [e for e in t["entries"] if e["kind"] == "hours"]
    assert said["text"].startswith("schedule 'Office': closed (closed date 2026-12-24)")
    heard = [e["prompt_text"] for e in t["entries"] if e["kind"] == "prompt"]
    assert heard == [default_text("en", "closed")]
    assert t["outcome"]["kind"] == "hangup"
    # The day before at the same time the line is open, by its weekly rule.
    t = _simulate(server, acc, menu, {"at": "2026-12-23T10:00:00+01:00", "timeline": []})
    assert t["hours"][0]["open"] is True
    assert t["hours"][0]["rule"] == "weekly mon,tue,wed,thu,fri 09:00-17:00"
    assert [e["key"] for e in t["entries"] if e["kind"] == "prompt"][:2] == ["welcome", "menu"]


def test_the_transcript_lists_each_member_rung_in_order_with_times(
    any_server: RunningServer,
) -> None:
    acc = any_server.account()
    people = []
    for n, name in enumerate(("Anna", "Bob", "Carl")):
        user = _post(
            any_server,
            acc,
            "/user",
            {
                "user_fname": name,
                "email": f"{name.lower()}-{acc.account_id}@example.com",
                "password": "password1",
            },
        )
        _put(
            any_server,
            acc,
            f"/user/{user['user_id']}",
            {"sip_uri": f"sip:{name}@127.0.0.1:{5091 + n}"},
        )
        people.append(str(user["user_id"]))
    team = _post(
        any_server,
        acc,
        "/team",
        {"name": "Sales", "members": people, "strategy": "order", "ring_seconds": 8},
    )
    menu = _apps(any_server, acc)["Main menu"]["app_id"]
    _put(
        any_server,
        acc,
        f"/voiceapp/{menu}",
        {"menu": {"digit_1": {"action": "call", "to": "csg", "id": team["team_id"]}}},
    )
    t = _simulate(
        any_server,
        acc,
        menu,
        {"timeline": [{"key": "1", "after": 1}, {"team": "Carl", "after": 2}]},
    )
    rung = [e for e in t["entries"] if e["kind"] == "transfer"]
    assert [(e["user_id"], e["attempt"], e["result"]) for e in rung] == [
        (people[0], 1, "no_answer"),
        (people[1], 2, "no_answer"),
        (people[2], 3, "answered"),
    ]
    assert all(e["team_id"] == team["team_id"] for e in rung)
    # Each member rings for the team's ring time, one after another.
    assert [round(b["at"] - a["at"], 1) for a, b in zip(rung, rung[1:], strict=False)] == [8, 8]
    assert [e["text"].split(" (team")[0] for e in rung] == [
        f"ringing Anna ({people[0]}) at sip:Anna@127.0.0.1:5091",
        f"ringing Bob ({people[1]}) at sip:Bob@127.0.0.1:5092",
        f"ringing Carl ({people[2]}) at sip:Carl@127.0.0.1:5093",
    ]
    assert t["outcome"]["kind"] == "transferred"
    assert t["outcome"]["target"] == "sip:Carl@127.0.0.1:5093"
    # The caller hears ringback while each member rings: 8 s, 8 s, then 2 s until Carl answers.
    ringback = sum(a["duration"] for a in t["audio"] if a["kind"] == "ringback")
    assert ringback == pytest.approx(18, abs=0.1)
    # The menu names the team.
    [menu_text] = [e["prompt_text"] for e in t["entries"] if e.get("key") == "menu"]
    assert menu_text.startswith("For Sales, press 1.")


def test_closed_and_all_busy_are_spoken_in_every_voice(server: RunningServer) -> None:
    acc = server.account()
    apps = _apps(server, acc)
    menu, sysprompt = apps["Main menu"]["app_id"], apps["System Prompt"]["app_id"]
    user = _post(
        server,
        acc,
        "/user",
        {
            "user_fname": "Anna",
            "email": f"anna-{acc.account_id}@example.com",
            "password": "password1",
        },
    )
    _put(server, acc, f"/user/{user['user_id']}", {"sip_uri": "sip:anna@127.0.0.1:5091"})
    # Nobody answering plays "all busy" before the team's no_answer (here: the mailbox).
    mailbox = {"action": "connect", "to": "app", "id": apps["Voice Mail"]["app_id"]}
    team = _post(
        server,
        acc,
        "/team",
        {"name": "Sales", "members": [user["user_id"]], "no_answer": mailbox},
    )
    _put(
        server,
        acc,
        f"/voiceapp/{menu}",
        {"menu": {"digit_1": {"action": "call", "to": "csg", "id": team["team_id"]}}},
    )
    _menu_with_hours(
        server,
        acc,
        {"name": "Closed", "timezone": "UTC", "closed_dates": ["2026-12-24"]},
        closed_to_mailbox=False,
    )
    hours = _apps(server, acc)["Main menu"]["open_hours"]
    open_now = _post(
        server,
        acc,
        "/schedule",
        {
            "name": "Always",
            "timezone": "UTC",
            "weekly": [
                {
                    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                    "from": "00:00",
                    "to": "24:00",
                }
            ],
        },
    )
    for voice in VOICES:
        _put(server, acc, f"/voiceapp/{sysprompt}", {"voice": voice})
        # Closed: "we are closed" in this voice, with a real recording behind it.
        _put(server, acc, f"/voiceapp/{menu}", {"open_hours": hours})
        t = _simulate(server, acc, menu, {"at": "2026-12-24T10:00:00Z", "timeline": []})
        [closed] = [e for e in t["entries"] if e.get("key") == "closed"]
        assert closed["voice"] == voice
        assert closed["prompt_text"] == default_text(voice, "closed"), voice
        assert closed["duration"] > 1.0, (voice, closed)
        # Open, key 1, nobody in the team answers: "all our staff are busy" in this voice.
        _put(
            server,
            acc,
            f"/voiceapp/{menu}",
            {"open_hours": {"schedule_id": open_now["schedule_id"]}},
        )
        t = _simulate(
            server,
            acc,
            menu,
            {"at": "2026-12-24T10:00:00Z", "timeline": ["1", {"team": "nobody"}]},
        )
        [busy] = [e for e in t["entries"] if e.get("key") == "all_busy"]
        assert busy["voice"] == voice
        assert busy["prompt_text"] == default_text(voice, "all_busy"), voice
        assert busy["duration"] > 1.0, (voice, busy)


def test_an_announcement_follows_opening_hours_and_then_rings_a_team(
    server: RunningServer,
) -> None:
    acc = server.account()
    user = _post(
        server,
        acc,
        "/user",
        {
            "user_fname": "Anna",
            "email": f"anna-{acc.account_id}@example.com",
            "password": "pw12345678",
        },
    )
    _put(server, acc, f"/user/{user['user_id']}", {"sip_uri": "sip:anna@127.0.0.1:5091"})
    team = _post(server, acc, "/team", {"name": "Front desk", "members": [user["user_id"]]})
    schedule = _post(
        server,
        acc,
        "/schedule",
        dict(NINE_TO_FIVE_NEW_YORK, name="Desk hours", timezone="Europe/Stockholm"),
    )
    box = _apps(server, acc)["Voice Mail"]["app_id"]
    greeting = _post(
        server,
        acc,
        "/voiceapp",
        {
            "app_type": "ivr",
            "name": "Greeting",
            "play_menu": "no",
            "final_action": {"action": "call", "to": "csg", "id": team["team_id"]},
            "open_hours": {
                "schedule_id": schedule["schedule_id"],
                "closed_action": {"action": "connect", "to": "app", "id": box},
            },
        },
    )
    app = greeting["app_id"]
    t = _simulate(
        server, acc, app, {"at": "2026-03-30T10:00:00+02:00", "timeline": [{"team": "Anna"}]}
    )
    assert t["hours"][0]["open"] is True
    [rang] = [e for e in t["entries"] if e["kind"] == "transfer"]
    assert (rang["team_id"], rang["result"]) == (team["team_id"], "answered")
    assert t["outcome"]["kind"] == "transferred"
    t = _simulate(server, acc, app, {"at": "2026-03-30T18:00:00+02:00", "timeline": []})
    assert t["hours"][0]["open"] is False
    assert [e["app_id"] for e in t["entries"] if e["kind"] == "app"] == [app, box]
    assert not [e for e in t["entries"] if e["kind"] == "transfer"]
    drawn = server.client.get(
        f"/account/{acc.account_id}/voiceapp/{app}/graph", headers=acc.headers
    ).json()["response"]
    assert {
        (e["label"], e["target"], e.get("branch"))
        for e in drawn["edges"]
        if e["source"] == f"app:{app}"
    } == {
        ("closed (Desk hours)", f"app:{box}", "closed"),
        ("then", f"team:{team['team_id']}", "open"),
    }
