"""Teams ("csg"): fields, defaults, errors naming the field, ETags, references and deletes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account, RunningServer


def _user(server: RunningServer, acc: Account, fname: str) -> str:
    r = server.client.post(
        f"/account/{acc.account_id}/user",
        headers=acc.headers,
        json={
            "user_fname": fname,
            "email": f"{fname.lower()}-{acc.account_id}@example.com",
            "password": "password1",
        },
    )
    assert r.status_code < 300, r.text
    return str(r.json()["response"]["user_id"])


def _apps(server: RunningServer, acc: Account) -> dict[str, dict[str, Any]]:
    r = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
    return {a["name"]: a for a in r.json()["response"]}


def _team(server: RunningServer, acc: Account, body: dict[str, Any]) -> httpx.Response:
    return server.client.post(f"/account/{acc.account_id}/team", headers=acc.headers, json=body)


def _error(r: httpx.Response, status: int, code: str, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "failed" and body["response"]["code"] == code, body
    for word in words:
        assert word in body["response"]["detail"], body


def test_a_team_is_created_read_listed_and_changed(any_server: RunningServer) -> None:
    acc = any_server.account()
    anna, bob = _user(any_server, acc, "Anna"), _user(any_server, acc, "Bob")
    r = _team(any_server, acc, {"name": "Sales", "members": [anna, int(bob)]})
    assert r.status_code == 200, r.text  # every success of the hosted API is a 200
    team = r.json()["response"]
    assert r.json()["resource"] == "team"
    assert team["team_id"].startswith("TM") and team["account_id"] == acc.account_id
    assert team["members"] == [anna, bob]
    # Defaults a user would expect of a ring group.
    assert (team["strategy"], team["ring_seconds"], team["max_seconds"]) == ("all", 20, 60)
    assert team["no_answer"] == {"action": "", "to": "", "id": ""}
    url = f"/account/{acc.account_id}/team/{team['team_id']}"
    got = any_server.client.get(url, headers=acc.headers)
    assert got.json()["response"] == team and got.headers["ETag"] == '"1"'
    listed = any_server.client.get(f"/account/{acc.account_id}/team", headers=acc.headers)
    assert [t["name"] for t in listed.json()["response"]] == ["Sales"]
    box = _apps(any_server, acc)["Voice Mail"]["app_id"]
    changed = any_server.client.put(
        url,
        headers=acc.headers,
        json={
            "strategy": "order",
            "ring_seconds": 15,
            "members": [bob, anna],
            "no_answer": {"action": "connect", "to": "app", "id": box},
        },
    )
    assert changed.status_code == 200, changed.text
    shown = changed.json()["response"]
    assert shown["name"] == "Sales" and shown["members"] == [bob, anna]
    assert (shown["strategy"], shown["ring_seconds"], shown["max_seconds"]) == ("order", 15, 60)
    assert shown["no_answer"]["id"] == box and changed.headers["ETag"] == '"2"'


def test_partial_responses_etags_and_slashes(server: RunningServer) -> None:
    acc = server.account()
    team = _team(server, acc, {"name": "Support"}).json()["response"]
    url = f"/account/{acc.account_id}/team/{team['team_id']}"
    for path in (url, f"//account//{acc.account_id}/team//{team['team_id']}/"):
        r = server.client.get(server.base_url + path + "?fields=name,strategy", headers=acc.headers)
        assert r.json()["response"] == {"name": "Support", "strategy": "all"}
    stale = server.client.put(url, headers={**acc.headers, "If-Match": '"7"'}, json={"name": "X"})
    _error(stale, 412, "precondition_failed", '"1"')
    fresh = server.client.put(url, headers={**acc.headers, "If-Match": '"1"'}, json={"name": "Y"})
    assert fresh.status_code == 200 and fresh.headers["ETag"] == '"2"'
    # What a GET returned may be sent back as it is.
    back = server.client.put(url, headers=acc.headers, json=fresh.json()["response"])
    assert back.status_code == 200, back.text


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"members": []}, 400, "missing_field", ("name",)),
        ({"name": "T", "strategy": "random"}, 400, "invalid_field", ("strategy", "rotate")),
        ({"name": "T", "members": ["1234567890"]}, 400, "unknown_reference", ("members[0]",)),
        ({"name": "T", "members": "everyone"}, 400, "invalid_field", ("members",)),
        ({"name": "T", "ring_seconds": 2}, 400, "invalid_field", ("ring_seconds", "5")),
        ({"name": "T", "ring_seconds": True}, 400, "invalid_field", ("ring_seconds",)),
        ({"name": "T", "max_seconds": 99999}, 400, "invalid_field", ("max_seconds",)),
        ({"name": "T", "ring_secs": 10}, 400, "invalid_field", ("ring_secs", "unknown field")),
        ({"name": ""}, 400, "invalid_field", ("name",)),
        (
            {"name": "T", "no_answer": {"action": "connect", "to": "app", "id": "VAnope"}},
            400,
            "unknown_reference",
            ("no_answer.id",),
        ),
        (
            {"name": "T", "no_answer": {"action": "repeat"}},
            400,
            "invalid_field",
            ("no_answer.action",),
        ),
    ],
)
def test_bad_teams_are_refused_naming_the_field(
    server: RunningServer, body: dict[str, Any], status: int, code: str, words: tuple[str, ...]
) -> None:
    acc = server.account()
    _error(_team(server, acc, body), status, code, *words)


def test_a_member_twice_and_read_only_fields(server: RunningServer) -> None:
    acc = server.account()
    r = _team(server, acc, {"name": "T", "members": [acc.user_id, acc.user_id]})
    _error(r, 400, "invalid_field", "members[1]", "already")
    team = _team(server, acc, {"name": "T"}).json()["response"]
    url = f"/account/{acc.account_id}/team/{team['team_id']}"
    r = server.client.put(url, headers=acc.headers, json={"team_id": "TMother"})
    _error(r, 400, "immutable_field", "team_id")
    _error(
        server.client.get(f"/account/{acc.account_id}/team/TMnope", headers=acc.headers),
        404,
        "not_found",
    )


def test_menus_and_numbers_ring_a_team_and_keep_it_from_being_deleted(
    any_server: RunningServer,
) -> None:
    acc = any_server.account()
    c, h, base = any_server.client, acc.headers, f"/account/{acc.account_id}"
    team = _team(any_server, acc, {"name": "Sales", "members": [acc.user_id]}).json()["response"]
    other = _team(
        any_server,
        acc,
        {"name": "Overflow", "no_answer": {"action": "call", "to": "csg", "id": team["team_id"]}},
    ).json()["response"]
    assert other["no_answer"]["id"] == team["team_id"]
    menu = _apps(any_server, acc)["Main menu"]
    menu_url = f"{base}/voiceapp/{menu['app_id']}"
    csg = {"action": "call", "to": "csg", "id": team["team_id"]}
    r = c.put(menu_url, headers=h, json={"menu": {"digit_2": csg}})
    assert r.status_code == 200 and r.json()["response"]["menu"]["digit_2"] == csg
    bad = c.put(menu_url, headers=h, json={"menu": {"digit_3": dict(csg, id="TMnope")}})
    _error(bad, 400, "unknown_reference", "menu.digit_3.id", "team")
    number = c.post(
        f"{base}/phonenumbersubscription",
        headers=h,
        json={"phnum": "+46812345000"},
    )
    assert number.status_code < 300, number.text
    r = c.put(
        f"{base}/phonenumbersubscription/+46812345000",
        headers=h,
        json={"connect_to_type": "csg", "connect_to": team["team_id"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["response"]["connect_to"] == team["team_id"]
    url = f"{base}/team/{team['team_id']}"
    refused = c.delete(url, headers=h)
    _error(refused, 409, "in_use", "menu.digit_2", "+46812345000", "no_answer")
    assert c.get(url, headers=h).status_code == 200  # nothing was deleted
    forced = c.delete(url + "?force=true", headers=h)
    assert forced.status_code == 200 and forced.json()["response"]["name"] == "Sales"
    assert c.get(url, headers=h).status_code == 404
    assert c.get(menu_url, headers=h).json()["response"]["menu"]["digit_2"]["action"] == ""
    shown = c.get(f"{base}/phonenumbersubscription/+46812345000", headers=h).json()["response"]
    assert shown["connect_to_type"] == ""
    left = c.get(f"{base}/team/{other['team_id']}", headers=h).json()["response"]
    assert left["no_answer"]["action"] == ""


def test_a_deleted_user_leaves_every_team(any_server: RunningServer) -> None:
    acc = any_server.account()
    c, h, base = any_server.client, acc.headers, f"/account/{acc.account_id}"
    anna, bob = _user(any_server, acc, "Anna"), _user(any_server, acc, "Bob")
    first = _team(any_server, acc, {"name": "A", "members": [anna, bob]}).json()["response"]
    second = _team(any_server, acc, {"name": "B", "members": [bob]}).json()["response"]
    r = c.delete(f"{base}/user/{bob}", headers=h)
    assert r.status_code == 200, r.text  # membership alone does not keep a user
    assert c.get(f"{base}/team/{first['team_id']}", headers=h).json()["response"]["members"] == [
        anna
    ]
    emptied = c.get(f"{base}/team/{second['team_id']}", headers=h)
    assert emptied.json()["response"]["members"] == []
    assert emptied.headers["ETag"] == '"2"'
    # A user a team's no_answer calls is a reference like any other.
    c.put(
        f"{base}/team/{first['team_id']}",
        headers=h,
        json={"no_answer": {"action": "call", "to": "user", "id": anna}},
    )
    _error(c.delete(f"{base}/user/{anna}", headers=h), 409, "in_use", "no_answer")


def test_another_account_cannot_see_or_use_a_team(server: RunningServer) -> None:
    mine, theirs = server.account(), server.account()
    team = _team(server, mine, {"name": "Private"}).json()["response"]
    r = server.client.get(
        f"/account/{theirs.account_id}/team/{team['team_id']}", headers=theirs.headers
    )
    _error(r, 404, "not_found")
    menu = _apps(server, theirs)["Main menu"]
    r = server.client.put(
        f"/account/{theirs.account_id}/voiceapp/{menu['app_id']}",
        headers=theirs.headers,
        json={"menu": {"digit_2": {"action": "call", "to": "csg", "id": team["team_id"]}}},
    )
    _error(r, 400, "unknown_reference")
    r = server.client.get(f"/account/{mine.account_id}/team", headers=theirs.headers)
    _error(r, 403, "forbidden")


def test_simulate_validate_and_graph_follow_a_saved_team(server: RunningServer) -> None:
    acc = server.account()
    c, h, base = server.client, acc.headers, f"/account/{acc.account_id}"
    anna, bob = _user(server, acc, "Anna"), _user(server, acc, "Bob")
    c.put(f"{base}/user/{anna}", headers=h, json={"sip_uri": "sip:anna@127.0.0.1:5099"})
    c.put(f"{base}/user/{bob}", headers=h, json={"sip_uri": "sip:bob@127.0.0.1:5098"})
    box = _apps(server, acc)["Voice Mail"]["app_id"]
    team = _team(
        server,
        acc,
        {
            "name": "Sales",
            "members": [anna, bob],
            "strategy": "order",
            "ring_seconds": 10,
            "no_answer": {"action": "connect", "to": "app", "id": box},
        },
    ).json()["response"]
    menu = _apps(server, acc)["Main menu"]
    c.put(
        f"{base}/voiceapp/{menu['app_id']}",
        headers=h,
        json={"menu": {"digit_2": {"action": "call", "to": "csg", "id": team["team_id"]}}},
    )
    r = c.post(
        f"{base}/voiceapp/{menu['app_id']}/simulate",
        headers=h,
        json={"timeline": ["2", {"team": "Bob", "after": 3}]},
    )
    assert r.status_code == 200, r.text
    t = r.json()["response"]
    rung = [e for e in t["entries"] if e["kind"] == "transfer"]
    assert [(e["user_id"], e["result"]) for e in rung] == [(anna, "no_answer"), (bob, "answered")]
    assert rung[1]["at"] - rung[0]["at"] == pytest.approx(10)
    assert t["outcome"]["kind"] == "transferred"
    assert t["outcome"]["target"] == "sip:bob@127.0.0.1:5098"
    # The default menu names the team.
    menu_text = next(e["prompt_text"] for e in t["entries"] if e.get("key") == "menu")
    assert "For Sales, press 2." in menu_text
    # Nobody answers: "all busy", then the mailbox.
    t = c.post(
        f"{base}/voiceapp/{menu['app_id']}/simulate",
        headers=h,
        json={"timeline": ["2", {"team": "nobody"}, {"record": 4}]},
    ).json()["response"]
    keys = [e["key"] for e in t["entries"] if e["kind"] == "prompt"]
    assert keys[-3:] == ["all_busy", "greeting", "goodbye"]
    assert t["outcome"]["kind"] == "voicemail"
    said = [e["prompt_text"] for e in t["entries"] if e.get("key") == "all_busy"]
    assert said == ["Sorry, all our staff are busy at the moment."]
    # A member who is emptied out of the team is no longer rung; validate says the team is empty.
    c.put(f"{base}/team/{team['team_id']}", headers=h, json={"members": []})
    found = c.get(f"{base}/voiceapp/{menu['app_id']}/validate", headers=h).json()["response"]
    assert "team_empty" in {p["code"] for p in found["problems"]}
    drawn = c.get(f"{base}/voiceapp/{menu['app_id']}/graph", headers=h).json()["response"]
    assert {"source": f"team:{team['team_id']}", "target": f"app:{box}", "label": "no answer"} in (
        drawn["edges"]
    )
