"""Voice apps: defaults, schemas, validation, partial responses, ETags, deletes."""

from __future__ import annotations

import threading
from typing import Any

from tests.conftest import Account, RunningServer


def _apps(server: RunningServer, acc: Account) -> dict[str, dict[str, Any]]:
    r = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
    assert r.status_code == 200
    return {a["name"]: a for a in r.json()["response"]}


def _create(server: RunningServer, acc: Account, body: dict[str, Any]) -> Any:
    return server.client.post(f"/account/{acc.account_id}/voiceapp", headers=acc.headers, json=body)


def test_new_account_has_the_three_default_apps(any_server: RunningServer) -> None:
    acc = any_server.account()
    apps = _apps(any_server, acc)
    assert [a["app_type"] for a in apps.values()] == ["ivr", "mailbox", "sysprompt"]
    assert list(apps) == ["Main menu", "Voice Mail", "System Prompt"]
    menu = apps["Main menu"]
    assert menu["menu"]["digit_1"] == {
        "action": "connect",
        "to": "app",
        "id": apps["Voice Mail"]["app_id"],
    }
    # *22 records prompts by phone: apps skip it.
    assert [a["shortcode"] for a in apps.values()] == ["*21", "*23", "*24"]
    for app in apps.values():
        assert app["sip_address"] == f"{app['app_id']}@{any_server.settings.sip_domain}"
        assert app["app_id"].startswith("VA") and app["tts_allowed"] == "yes"


def test_create_ivr_like_the_hosted_service_and_read_it_back(any_server: RunningServer) -> None:
    acc = any_server.account()
    box = _apps(any_server, acc)["Voice Mail"]["app_id"]
    body = {
        "app_type": "ivr",
        "play_menu": "yes",
        "name": "Sales",
        "voice": "en-fe",
        "play_welcome": "no",
        "get_extension": "yes",
        "menu": {
            "digit_0": {"action": "call", "to": "user", "id": acc.user_id},
            "digit_1": {"action": "call", "to": "phnum", "id": "+46812345678"},
            "digit_2": {"action": "connect", "to": "app", "id": box},
            "digit_star": {"action": "repeat", "to": "", "id": ""},
            "timeout": {"action": "hangup", "to": "", "id": ""},
        },
        "menu_timeout": 7,
    }
    r = _create(any_server, acc, body)
    assert r.status_code == 200, r.text
    app = r.json()["response"]
    got = any_server.client.get(
        f"/account/{acc.account_id}/voiceapp/{app['app_id']}", headers=acc.headers
    )
    shown = got.json()["response"]
    assert (
        shown["voice"] == "en-fe" and shown["play_welcome"] == "no" and shown["menu_timeout"] == 7
    )
    assert shown["menu"]["digit_2"]["id"] == box
    assert shown["menu"]["digit_3"] == {"action": "", "to": "", "id": ""}
    assert shown["max_retries"] == 3 and shown["interdigit_timeout"] == 2


def test_fields_partial_response_and_slashes(server: RunningServer) -> None:
    acc = server.account()
    app_id = _apps(server, acc)["Main menu"]["app_id"]
    for path in (
        f"/account/{acc.account_id}/voiceapp/{app_id}",
        f"//account//{acc.account_id}/voiceapp//{app_id}/",
    ):
        r = server.client.get(server.base_url + path + "?fields=name,voice", headers=acc.headers)
        assert r.status_code == 200, path
        assert r.json()["response"] == {"name": "Main menu", "voice": "en"}
    r = server.client.get(f"/account/{acc.account_id}/voiceapp/?fields=app_id", headers=acc.headers)
    assert all(set(a) == {"app_id"} for a in r.json()["response"])


def test_validation_names_the_field(server: RunningServer) -> None:
    acc = server.account()
    cases = [
        ({"app_type": "ivr", "name": "x", "voice": "klingon"}, "voice"),
        ({"app_type": "ivr", "name": "x", "play_menu": "maybe"}, "play_menu"),
        (
            {
                "app_type": "ivr",
                "name": "x",
                "menu": {"digit_1": {"action": "dance", "to": "", "id": ""}},
            },
            "menu.digit_1.action",
        ),
        (
            {
                "app_type": "ivr",
                "name": "x",
                "menu": {"digit_1": {"action": "call", "to": "phnum", "id": "0812345"}},
            },
            "menu.digit_1.id",
        ),
        (
            {
                "app_type": "ivr",
                "name": "x",
                "menu": {"digit_2": {"action": "call", "to": "user", "id": "999"}},
            },
            "menu.digit_2.id",
        ),
        (
            {
                "app_type": "ivr",
                "name": "x",
                "menu": {"digit_2": {"action": "connect", "to": "app", "id": "VAnope"}},
            },
            "menu.digit_2.id",
        ),
        (
            {
                "app_type": "ivr",
                "name": "x",
                "menu": {"digit_2": {"action": "play", "to": "prompt", "id": "PRnope"}},
            },
            "menu.digit_2.id",
        ),
        (
            {
                "app_type": "ivr",
                "name": "x",
                "menu": {"digit_10": {"action": "", "to": "", "id": ""}},
            },
            "menu",
        ),
        ({"app_type": "ivr", "name": "x", "menu_timeout": 0}, "menu_timeout"),
        (
            {
                "app_type": "mailbox",
                "name": "x",
                "deliver_to": "email",
                "deliver_to_details": "not-mail",
            },
            "deliver_to_details",
        ),
        (
            {"app_type": "mailbox", "name": "x", "deliver_to": "user", "deliver_to_details": "42"},
            "deliver_to_details",
        ),
        ({"app_type": "fax", "name": "x"}, "app_type"),
        ({"app_type": "ivr", "name": 5}, "name"),
        ({"name": "x"}, "app_type"),
    ]
    for body, field in cases:
        r = _create(server, acc, body)
        assert r.status_code == 400, (body, r.text)
        detail = r.json()["response"]["detail"]
        assert detail.startswith(field), (field, detail)
    r = server.client.post(
        f"/account/{acc.account_id}/voiceapp",
        headers={**acc.headers, "Content-Type": "application/json"},
        content=b'{"app_type": "ivr", ',
    )
    assert r.status_code == 400 and r.json()["response"]["code"] == "malformed_json"
    assert len(_apps(server, acc)) == 3


def test_put_changes_only_the_fields_it_carries(server: RunningServer) -> None:
    acc = server.account()
    app = _apps(server, acc)["Main menu"]
    url = f"/account/{acc.account_id}/voiceapp/{app['app_id']}"
    r = server.client.put(
        url, headers=acc.headers, json={"menu": {"digit_5": {"action": "hangup"}}}
    )
    assert r.status_code == 200, r.text
    shown = r.json()["response"]
    assert shown["menu"]["digit_5"]["action"] == "hangup"
    assert shown["menu"]["digit_1"] == app["menu"]["digit_1"]
    assert shown["name"] == "Main menu"
    r = server.client.put(url, headers=acc.headers, json={"app_type": "mailbox"})
    assert r.status_code == 400 and r.json()["response"]["code"] == "immutable_field"
    # Read-only fields come back unchanged from a GET and are ignored; changed, they are refused.
    r = server.client.put(
        url,
        headers=acc.headers,
        json={"app_id": app["app_id"], "shortcode": app["shortcode"], "name": "Front"},
    )
    assert r.status_code == 200 and r.json()["response"]["name"] == "Front", r.text
    r = server.client.put(url, headers=acc.headers, json={"app_id": "VAother", "name": "Back"})
    assert r.status_code == 400 and r.json()["response"]["code"] == "immutable_field"
    assert r.json()["response"]["detail"].startswith("app_id:")


def test_if_match_detects_a_stale_version(server: RunningServer) -> None:
    acc = server.account()
    app = _apps(server, acc)["Main menu"]
    url = f"/account/{acc.account_id}/voiceapp/{app['app_id']}"
    etag = server.client.get(url, headers=acc.headers).headers["ETag"]
    r = server.client.put(url, headers={**acc.headers, "If-Match": etag}, json={"name": "One"})
    assert r.status_code == 200 and r.headers["ETag"] != etag
    r = server.client.put(url, headers={**acc.headers, "If-Match": etag}, json={"name": "Two"})
    assert r.status_code == 412
    assert server.client.get(url, headers=acc.headers).json()["response"]["name"] == "One"


def test_concurrent_puts_without_if_match_lose_no_field(any_server: RunningServer) -> None:
    acc = any_server.account()
    app = _apps(any_server, acc)["Main menu"]
    url = f"/account/{acc.account_id}/voiceapp/{app['app_id']}"
    digits = [str(d) for d in range(10) if d != 1]
    errors: list[str] = []

    def put(d: str) -> None:
        import httpx

        with httpx.Client(base_url=any_server.base_url, timeout=30) as c:
            r = c.put(url, headers=acc.headers, json={"menu": {f"digit_{d}": {"action": "hangup"}}})
            if r.status_code != 200:
                errors.append(r.text)

    threads = [threading.Thread(target=put, args=(d,)) for d in digits]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    menu = any_server.client.get(url, headers=acc.headers).json()["response"]["menu"]
    assert all(menu[f"digit_{d}"]["action"] == "hangup" for d in digits)


def test_delete_referenced_app_needs_force(any_server: RunningServer) -> None:
    acc = any_server.account()
    apps = _apps(any_server, acc)
    box = apps["Voice Mail"]["app_id"]
    any_server.client.post(
        f"/account/{acc.account_id}/phonenumbersubscription",
        headers=acc.headers,
        json={"phnum": "+46855500001", "connect_to_type": "app", "connect_to": box},
    )
    url = f"/account/{acc.account_id}/voiceapp/{box}"
    r = any_server.client.delete(url, headers=acc.headers)
    assert r.status_code == 409
    detail = r.json()["response"]["detail"]
    assert apps["Main menu"]["app_id"] in detail and "+46855500001" in detail
    assert any_server.client.delete(url + "?force=true", headers=acc.headers).status_code == 200
    assert any_server.client.get(url, headers=acc.headers).status_code == 404
    menu = _apps(any_server, acc)["Main menu"]["menu"]
    assert menu["digit_1"] == {"action": "", "to": "", "id": ""}
    num = any_server.client.get(
        f"/account/{acc.account_id}/phonenumbersubscription/46855500001", headers=acc.headers
    ).json()["response"]
    assert num["connect_to_type"] == ""
    sysprompt = apps["System Prompt"]["app_id"]
    r = any_server.client.delete(
        f"/account/{acc.account_id}/voiceapp/{sysprompt}", headers=acc.headers
    )
    assert r.status_code == 409


def test_errors_catalogue(server: RunningServer) -> None:
    r = server.client.get("/globaldata/errors")
    codes = {e["code"] for e in r.json()["response"]}
    assert {"unauthorized", "not_found", "in_use", "precondition_failed", "invalid_field"} <= codes
    r = server.client.get("/globaldata/errors?resource=voiceapp")
    assert all(e["resource"] == "voiceapp" for e in r.json()["response"])


def test_the_recording_shortcode_is_no_apps(any_server: RunningServer) -> None:
    acc = any_server.account()
    base = f"/account/{acc.account_id}/voiceapp"
    r = any_server.client.post(
        base,
        headers=acc.headers,
        json={"app_type": "ivr", "name": "Sales", "shortcode": "*22"},
    )
    assert r.status_code == 400 and "shortcode" in r.text and "*22" in r.text
    made = any_server.client.post(base, headers=acc.headers, json={"app_type": "ivr", "name": "X"})
    assert made.status_code == 200 and made.json()["response"]["shortcode"] == "*25"
