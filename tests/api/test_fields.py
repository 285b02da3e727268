"""Fields a request may carry: unknown ones refused by name, what a GET shows accepted back,
booleans no numbers, error codes that match the request; and what the hosted service's clients
send (token paths, HTTP 200 on creates, ?fields=message, the `disconnect` action)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Account, RunningServer


def _apps(server: RunningServer, acc: Account) -> dict[str, dict[str, Any]]:
    r = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
    return {a["app_type"]: a for a in r.json()["response"]}


def _failed(r: Any, status: int, code: str, names: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "failed" and body["response"]["code"] == code, body
    detail: str = body["response"]["detail"]
    assert detail.startswith(names), detail
    return detail


def test_unknown_fields_are_refused_naming_them(server: RunningServer) -> None:
    acc = server.account()
    c, h, base = server.client, acc.headers, f"/account/{acc.account_id}"
    apps = _apps(server, acc)
    ivr, box = apps["ivr"]["app_id"], apps["mailbox"]["app_id"]
    made = c.post(f"{base}/voiceapp/{ivr}/prompt", headers=h, json={"name": "Hours"})
    prompt_id = made.json()["response"]["prompt_id"]
    c.post(f"{base}/phonenumbersubscription", headers=h, json={"phnum": "+46812340001"})
    for method, path, body, names in [
        (
            "PUT",
            f"{base}/voiceapp/{ivr}",
            {"menu_timout": 9, "colour": "red"},
            "menu_timout, colour",
        ),
        # A field of another app type is not a field of this one.
        ("PUT", f"{base}/voiceapp/{ivr}", {"deliver_to": "email"}, "deliver_to"),
        (
            "POST",
            f"{base}/voiceapp",
            {"app_type": "mailbox", "name": "B", "play_menu": "no"},
            "play_menu",
        ),
        ("PUT", f"{base}/voiceapp/{box}", {"webhook": "http://x"}, "webhook"),
        (
            "POST",
            f"{base}/user",
            {"email": "a@example.com", "password": "pw-123456", "nmae": "A"},
            "nmae",
        ),
        ("PUT", f"{base}/user/{acc.user_id}", {"first_name": "A"}, "first_name"),
        ("PUT", base, {"currency": "EUR"}, "currency"),
        (
            "PUT",
            f"{base}/phonenumbersubscription/+46812340001",
            {"connect_to_typ": "app"},
            "connect_to_typ",
        ),
        ("PUT", f"/prompt/{prompt_id}", {"nmae": "x"}, "nmae"),
        ("POST", f"/prompt/{prompt_id}/message", {"text": "Hi", "speed": 2}, "speed"),
        ("POST", "/tts/prompt/convert", {"text": "Hi", "language": "en_GB", "pitch": 1}, "pitch"),
        ("POST", f"{base}/voiceapp/{ivr}/simulate", {"keys": "1", "kyes": "2"}, "kyes"),
        # A draft checked before it is saved is judged as its PUT would be.
        ("POST", f"{base}/voiceapp/{ivr}/validate", {"menu_timout": 9}, "menu_timout"),
    ]:
        detail = _failed(c.request(method, path, headers=h, json=body), 400, "invalid_field", names)
        assert "unknown field" in detail
    # Nothing changed: the menu timeout is still the default.
    assert _apps(server, acc)["ivr"]["menu_timeout"] == 5


def test_what_a_get_shows_can_be_put_back(any_server: RunningServer) -> None:
    acc = any_server.account()
    c, h, base = any_server.client, acc.headers, f"/account/{acc.account_id}"
    apps = _apps(any_server, acc)
    made = c.post(f"{base}/voiceapp/{apps['ivr']['app_id']}/prompt", headers=h, json={"name": "P"})
    prompt_id = made.json()["response"]["prompt_id"]
    c.post(f"{base}/phonenumbersubscription", headers=h, json={"phnum": "+46812340002"})
    for path, change in [
        (f"{base}/voiceapp/{apps['ivr']['app_id']}", {"menu_timeout": 8}),
        (f"{base}/voiceapp/{apps['mailbox']['app_id']}", {"max_messages": 7}),
        (f"{base}/voiceapp/{apps['sysprompt']['app_id']}", {"error_voice": "swe"}),
        (f"{base}/user/{acc.user_id}", {"user_fname": "Ada"}),
        (base, {"name": "Ada's shop"}),
        (
            f"{base}/phonenumbersubscription/+46812340002",
            {"connect_to_type": "user", "connect_to": acc.user_id},
        ),
        (f"/prompt/{prompt_id}", {"name": "Opening hours"}),
    ]:
        shown = c.get(path, headers=h).json()["response"]
        r = c.put(path, headers=h, json={**shown, **change})
        assert r.status_code == 200, (path, r.text)
        after = c.get(path, headers=h).json()["response"]
        for key, value in change.items():
            assert after[key] == value, (path, key, after)
    # A read-only field that differs from what the resource has is refused, naming it.
    ivr = c.get(f"{base}/voiceapp/{apps['ivr']['app_id']}", headers=h).json()["response"]
    r = c.put(f"{base}/voiceapp/{ivr['app_id']}", headers=h, json={**ivr, "shortcode": "*99"})
    _failed(r, 400, "immutable_field", "shortcode")
    r = c.put(f"{base}/user/{acc.user_id}", headers=h, json={"user_id": "1234567890"})
    _failed(r, 400, "immutable_field", "user_id")
    r = c.put(f"/prompt/{prompt_id}", headers=h, json={"type": "standard", "name": "x"})
    _failed(r, 400, "immutable_field", "type")


def test_booleans_are_not_numbers(server: RunningServer) -> None:
    acc = server.account()
    c, h, base = server.client, acc.headers, f"/account/{acc.account_id}"
    apps = _apps(server, acc)
    for app, field in [
        ("ivr", "menu_timeout"),
        ("ivr", "max_retries"),
        ("mailbox", "max_messages"),
    ]:
        r = c.put(f"{base}/voiceapp/{apps[app]['app_id']}", headers=h, json={field: True})
        _failed(r, 400, "invalid_field", field)
    r = c.put(f"{base}/user/{acc.user_id}", headers=h, json={"extension": True})
    _failed(r, 400, "invalid_field", "extension")
    assert _apps(server, acc)["ivr"]["menu_timeout"] == 5


def test_error_codes_match_the_request(server: RunningServer) -> None:
    acc = server.account()
    c, h, base = server.client, acc.headers, f"/account/{acc.account_id}"
    r = c.post("/tts/prompt/convert", headers=h, json={"language": "en_GB"})
    _failed(r, 400, "missing_field", "text")
    assert r.json()["resource"] == "tts"
    r = c.post("/tts/prompt/convert", headers=h, json={"text": "Hi", "language": "xx_XX"})
    assert r.json()["resource"] == "tts", r.text
    ivr = _apps(server, acc)["ivr"]["app_id"]
    r = c.post(f"{base}/voiceapp/{ivr}/simulate", headers=h, json={"keys": "1x"})
    _failed(r, 400, "invalid_field", "keys")
    r = c.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("sonetel-api", "sonetel-api"),
    )
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type", r.text
    r = c.post("/oauth/token", data={"username": acc.email}, auth=("sonetel-api", "sonetel-api"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text


@pytest.mark.parametrize(
    "path", ["/SonetelAuth/oauth/token", "/SonetelAuth/beta/oauth/token", "/oauth/token"]
)
def test_the_token_is_served_at_every_path_clients_use(server: RunningServer, path: str) -> None:
    acc = server.account()
    r = server.client.post(
        path,
        data={"grant_type": "password", "username": acc.email, "password": acc.password},
        auth=("sonetel-api", "sonetel-api"),
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    me = server.client.get(
        f"/account/{acc.account_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert me.status_code == 200, me.text


def test_creates_answer_200(any_server: RunningServer) -> None:
    acc = any_server.account()
    c, h, base = any_server.client, acc.headers, f"/account/{acc.account_id}"
    made = [
        c.post(f"{base}/voiceapp", headers=h, json={"app_type": "ivr", "name": "Sales"}),
        c.post(
            f"{base}/user",
            headers=h,
            json={"email": "bo@example.com", "password": "bo-pass-1", "user_fname": "Bo"},
        ),
        c.post(f"{base}/phonenumbersubscription", headers=h, json={"phnum": "+46812340003"}),
    ]
    app_id = made[0].json()["response"]["app_id"]
    made.append(c.post(f"{base}/voiceapp/{app_id}/prompt", headers=h, json={"name": "Deals"}))
    for r in made:
        assert r.status_code == 200 and r.json()["status"] == "success", r.text
    # Errors keep their real status.
    again = c.post(f"{base}/phonenumbersubscription", headers=h, json={"phnum": "+46812340003"})
    _failed(again, 409, "duplicate", "phnum")


def test_fields_message_adds_the_message_to_whole_prompts(server: RunningServer) -> None:
    acc = server.account()
    c, h, base = server.client, acc.headers, f"/account/{acc.account_id}"
    box = _apps(server, acc)["mailbox"]["app_id"]
    listed = c.get(f"{base}/voiceapp/{box}/prompt?fields=message", headers=h).json()["response"]
    assert listed
    for prompt in listed:
        assert {"prompt_id", "type", "name", "app_id"} <= set(prompt), prompt
        assert {"exists", "file_name", "audio_length", "size", "message_url"} <= set(prompt)
    # Other names keep selecting.
    names = c.get(f"{base}/voiceapp/{box}/prompt?fields=name,type", headers=h).json()["response"]
    assert all(set(p) == {"name", "type"} for p in names), names


def test_disconnect_with_nulls_takes_a_digit_out_of_use(any_server: RunningServer) -> None:
    acc = any_server.account()
    c, h, base = any_server.client, acc.headers, f"/account/{acc.account_id}"
    ivr = _apps(any_server, acc)["ivr"]
    assert ivr["menu"]["digit_1"]["action"] == "connect"  # the default: 1 for voicemail
    r = c.put(
        f"{base}/voiceapp/{ivr['app_id']}",
        headers=h,
        json={
            "menu": {
                "digit_1": {"action": "disconnect", "to": None, "id": None},
                "digit_2": {"action": "call", "to": "user", "id": acc.user_id},
                "digit_3": {"action": None, "to": None, "id": None},
            },
            "final_action": {"action": "hangup", "to": None, "id": None},
        },
    )
    assert r.status_code == 200, r.text
    menu = c.get(f"{base}/voiceapp/{ivr['app_id']}", headers=h).json()["response"]["menu"]
    assert menu["digit_1"] == {"action": "", "to": "", "id": ""}
    assert menu["digit_2"] == {"action": "call", "to": "user", "id": acc.user_id}
    assert menu["digit_3"] == {"action": "", "to": "", "id": ""}
    # A simulated press of 1 no longer reaches the mailbox.
    box = _apps(any_server, acc)["mailbox"]["app_id"]
    sim = c.post(f"{base}/voiceapp/{ivr['app_id']}/simulate", headers=h, json={"keys": "1"})
    assert sim.status_code == 200, sim.text
    assert box not in str(sim.json()["response"])
