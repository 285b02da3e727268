"""Schedules (opening hours): fields, normalised form, errors naming the field, and menus
that follow them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account, RunningServer

OFFICE = {
    "name": "Office hours",
    "timezone": "Europe/Stockholm",
    "weekly": [
        {"days": ["Mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"},
        {"days": ["sat"], "from": "22:00", "to": "06:00"},
    ],
    "closed_dates": ["2026-12-25", "2026-12-24"],
    "special": [{"date": "2026-12-31", "from": "10:00", "to": "14:00"}],
}


def _schedule(server: RunningServer, acc: Account, body: dict[str, Any]) -> httpx.Response:
    return server.client.post(f"/account/{acc.account_id}/schedule", headers=acc.headers, json=body)


def _menu(server: RunningServer, acc: Account) -> dict[str, Any]:
    apps = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
    return next(a for a in apps.json()["response"] if a["name"] == "Main menu")


def _error(r: httpx.Response, status: int, code: str, *words: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["response"]["code"] == code, r.text
    for word in words:
        assert word in r.json()["response"]["detail"], r.text


def test_a_schedule_is_kept_in_a_normal_form(any_server: RunningServer) -> None:
    acc = any_server.account()
    r = _schedule(any_server, acc, OFFICE)
    assert r.status_code == 200, r.text
    shown = r.json()["response"]
    assert shown["schedule_id"].startswith("SC") and r.json()["resource"] == "schedule"
    assert shown["weekly"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"},
        {"days": ["sat"], "from": "22:00", "to": "06:00"},
    ]
    assert shown["closed_dates"] == ["2026-12-24", "2026-12-25"]
    assert shown["special"] == [{"date": "2026-12-31", "from": "10:00", "to": "14:00"}]
    url = f"/account/{acc.account_id}/schedule/{shown['schedule_id']}"
    got = any_server.client.get(url, headers=acc.headers)
    assert got.json()["response"] == shown and got.headers["ETag"] == '"1"'
    changed = any_server.client.put(
        url, headers={**acc.headers, "If-Match": '"1"'}, json={"closed_dates": []}
    )
    assert changed.status_code == 200 and changed.json()["response"]["closed_dates"] == []
    assert changed.json()["response"]["weekly"] == shown["weekly"]
    stale = any_server.client.put(url, headers={**acc.headers, "If-Match": '"1"'}, json={})
    _error(stale, 412, "precondition_failed")
    listed = any_server.client.get(
        f"/account/{acc.account_id}/schedule?fields=name,timezone", headers=acc.headers
    )
    assert listed.json()["response"] == [{"name": "Office hours", "timezone": "Europe/Stockholm"}]


def test_a_new_schedule_takes_the_accounts_time_zone(server: RunningServer) -> None:
    acc = server.account()
    server.client.put(
        f"/account/{acc.account_id}", headers=acc.headers, json={"timezone": "America/New_York"}
    )
    r = _schedule(server, acc, {"name": "Plain"})
    assert r.json()["response"]["timezone"] == "America/New_York"
    assert r.json()["response"]["weekly"] == []


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"timezone": "UTC"}, "missing_field", ("name",)),
        ({"name": "S", "timezone": "Mars/Olympus"}, "invalid_field", ("timezone", "Mars")),
        (
            {"name": "S", "weekly": [{"days": ["mon"], "from": "25:00", "to": "17:00"}]},
            "invalid_field",
            ("weekly[0].from", "09:00"),
        ),
        (
            {"name": "S", "weekly": [{"days": ["funday"], "from": "09:00", "to": "17:00"}]},
            "invalid_field",
            ("weekly[0].days", "funday"),
        ),
        (
            {"name": "S", "weekly": [{"days": ["mon"], "from": "09:00", "to": "09:00"}]},
            "invalid_field",
            ("weekly[0].to", "24:00"),
        ),
        (
            {"name": "S", "weekly": [{"days": ["mon"], "from": "09:00"}]},
            "invalid_field",
            ("weekly[0].to", "required"),
        ),
        (
            {"name": "S", "weekly": [{"days": [], "from": "09:00", "to": "10:00"}]},
            "invalid_field",
            ("weekly[0].days",),
        ),
        ({"name": "S", "closed_dates": ["2026-02-30"]}, "invalid_field", ("closed_dates[0]",)),
        (
            {
                "name": "S",
                "closed_dates": ["2026-12-24"],
                "special": [{"date": "2026-12-24", "from": "10:00", "to": "12:00"}],
            },
            "invalid_field",
            ("closed_dates", "2026-12-24"),
        ),
        ({"name": "S", "holidays": []}, "invalid_field", ("holidays", "unknown field")),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(
    server: RunningServer, body: dict[str, Any], code: str, words: tuple[str, ...]
) -> None:
    _error(_schedule(server, server.account(), body), 400, code, *words)


def test_a_menu_follows_a_schedule_and_keeps_it_from_being_deleted(
    any_server: RunningServer,
) -> None:
    acc = any_server.account()
    c, h, base = any_server.client, acc.headers, f"/account/{acc.account_id}"
    schedule = _schedule(any_server, acc, OFFICE).json()["response"]
    apps = c.get(f"{base}/voiceapp", headers=h).json()["response"]
    box = next(a for a in apps if a["app_type"] == "mailbox")["app_id"]
    menu = _menu(any_server, acc)
    assert menu["open_hours"] == {
        "schedule_id": "",
        "closed_action": {"action": "", "to": "", "id": ""},
    }
    hours = {
        "schedule_id": schedule["schedule_id"],
        "closed_action": {"action": "connect", "to": "app", "id": box},
    }
    menu_url = f"{base}/voiceapp/{menu['app_id']}"
    r = c.put(menu_url, headers=h, json={"open_hours": hours})
    assert r.status_code == 200 and r.json()["response"]["open_hours"] == hours, r.text
    _error(
        c.put(menu_url, headers=h, json={"open_hours": dict(hours, schedule_id="SCnope")}),
        400,
        "unknown_reference",
        "open_hours.schedule_id",
    )
    _error(
        c.put(
            menu_url,
            headers=h,
            json={"open_hours": dict(hours, closed_action={"action": "play", "to": "prompt"})},
        ),
        400,
        "unknown_reference",
        "open_hours.closed_action.id",
    )
    _error(
        c.put(
            menu_url,
            headers=h,
            json={"open_hours": dict(hours, closed_action={"action": "repeat"})},
        ),
        400,
        "invalid_field",
        "open_hours.closed_action.action",
    )
    url = f"{base}/schedule/{schedule['schedule_id']}"
    _error(c.delete(url, headers=h), 409, "in_use", "open_hours")
    # The mailbox the closed action connects to is a reference too.
    _error(c.delete(f"{base}/voiceapp/{box}", headers=h), 409, "in_use", "open_hours.closed_action")
    assert c.delete(url + "?force=true", headers=h).status_code == 200
    # The menu is always open again.
    assert c.get(menu_url, headers=h).json()["response"]["open_hours"]["schedule_id"] == ""
    r = c.put(menu_url, headers=h, json={"open_hours": None})
    assert r.status_code == 200, r.text


def _simulate(
    server: RunningServer, acc: Account, app_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    r = server.client.post(
        f"/account/{acc.account_id}/voiceapp/{app_id}/simulate", headers=acc.headers, json=body
    )
    assert r.status_code == 200, r.text
    return dict(r.json()["response"])


@pytest.mark.parametrize(
    ("at", "branch"),
    [
        # Stockholm, 08:59 and 09:00 local on the Friday before and the Monday after clocks
        # went forward (2026-03-29), and around the day they went back (2026-10-25).
        ("2026-03-27T08:59:00+01:00", "closed"),
        ("2026-03-27T09:00:00+01:00", "open"),
        ("2026-03-30T08:59:00+02:00", "closed"),
        ("2026-03-30T09:00:00+02:00", "open"),
        ("2026-10-23T07:00:00Z", "open"),  # Fri 09:00 CEST
        ("2026-10-26T07:59:00Z", "closed"),  # Mon 08:59 CET: the same UTC time was open
        ("2026-10-26T08:00:00Z", "open"),
    ],
)
def test_a_simulated_call_takes_the_closed_or_open_branch(
    any_server: RunningServer, at: str, branch: str
) -> None:
    acc = any_server.account()
    c, h, base = any_server.client, acc.headers, f"/account/{acc.account_id}"
    schedule = _schedule(any_server, acc, OFFICE).json()["response"]
    apps = c.get(f"{base}/voiceapp", headers=h).json()["response"]
    box = next(a for a in apps if a["app_type"] == "mailbox")["app_id"]
    menu = _menu(any_server, acc)
    c.put(
        f"{base}/voiceapp/{menu['app_id']}",
        headers=h,
        json={
            "open_hours": {
                "schedule_id": schedule["schedule_id"],
                "closed_action": {"action": "connect", "to": "app", "id": box},
            }
        },
    )
    t = _simulate(any_server, acc, menu["app_id"], {"at": at, "timeline": [{"hangup": True}]})
    [decision] = t["hours"]
    assert decision["open"] is (branch == "open"), decision
    assert decision["schedule_id"] == schedule["schedule_id"]
    entered = [e["app_id"] for e in t["entries"] if e["kind"] == "app"]
    assert entered == ([menu["app_id"]] if branch == "open" else [menu["app_id"], box])
    [said] = [e for e in t["entries"] if e["kind"] == "hours"]
    assert said["rule"] == decision["rule"] and "Office hours" in said["text"]
    assert t["at"] is not None


def test_simulate_refuses_an_instant_without_its_offset(server: RunningServer) -> None:
    acc = server.account()
    menu = _menu(server, acc)
    r = server.client.post(
        f"/account/{acc.account_id}/voiceapp/{menu['app_id']}/simulate",
        headers=acc.headers,
        json={"at": "2026-12-24T10:00:00"},
    )
    _error(r, 400, "invalid_field", "at", "offset")


def test_validate_and_graph_see_the_opening_hours(server: RunningServer) -> None:
    acc = server.account()
    c, h, base = server.client, acc.headers, f"/account/{acc.account_id}"
    never = _schedule(server, acc, {"name": "Never", "closed_dates": ["2026-01-01"]})
    menu = _menu(server, acc)
    c.put(
        f"{base}/voiceapp/{menu['app_id']}",
        headers=h,
        json={"open_hours": {"schedule_id": never.json()["response"]["schedule_id"]}},
    )
    found = c.get(f"{base}/voiceapp/{menu['app_id']}/validate", headers=h).json()["response"]
    codes = {p["code"] for p in found["problems"]}
    assert {"schedule_never_open", "closed_action_reaches_nothing"} <= codes
    drawn = c.get(f"{base}/voiceapp/{menu['app_id']}/graph", headers=h).json()["response"]
    closed = {
        "source": f"app:{menu['app_id']}",
        "target": "hangup",
        "label": "closed (Never)",
        "branch": "closed",
    }
    assert closed in drawn["edges"]
    # The menu's keys are what callers get while it is open.
    keys = [e for e in drawn["edges"] if e["source"] == closed["source"] and e != closed]
    assert keys and {e["branch"] for e in keys} == {"open"}
