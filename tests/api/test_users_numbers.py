"""Users, extensions, phone numbers and the account resource."""

from __future__ import annotations

from tests.conftest import RunningServer


def test_users_get_unique_extensions(any_server: RunningServer) -> None:
    acc = any_server.account()
    url = f"/account/{acc.account_id}/user"
    made = []
    for i in range(3):
        r = any_server.client.post(
            url,
            headers=acc.headers,
            json={
                "user_fname": f"U{i}",
                "user_lname": "Test",
                "email": f"u{i}-{acc.account_id}@example.com",
                "password": "password1",
                "type": "regular",
            },
        )
        assert r.status_code == 200, r.text
        made.append(r.json()["response"])
    exts = {u["extension"] for u in made} | {"100"}
    assert len(exts) == 4
    r = any_server.client.post(
        url,
        headers=acc.headers,
        json={
            "email": f"dup-{acc.account_id}@example.com",
            "password": "password1",
            "extension": made[0]["extension"],
        },
    )
    assert r.status_code == 409 and "extension" in r.json()["response"]["detail"]
    r = any_server.client.post(
        url, headers=acc.headers, json={"email": made[0]["email"], "password": "password1"}
    )
    assert r.status_code == 409
    r = any_server.client.put(
        f"{url}/{made[1]['user_id']}",
        headers=acc.headers,
        json={
            "phnum": "+46701234567",
            "sip_uri": "sip:u1@pbx.example.com",
            "extension": "205",
        },
    )
    shown = r.json()["response"]
    assert (shown["phnum"], shown["sip_uri"], shown["extension"]) == (
        "+46701234567",
        "sip:u1@pbx.example.com",
        "205",
    )
    assert "password" not in str(shown).lower().replace("has_sip_password", "")
    r = any_server.client.put(
        f"{url}/{made[1]['user_id']}", headers=acc.headers, json={"phnum": "12345"}
    )
    assert r.status_code == 400 and r.json()["response"]["detail"].startswith("phnum")
    users = any_server.client.get(url, headers=acc.headers).json()["response"]
    assert len(users) == 4


def test_deleting_a_user_a_menu_calls_needs_force(server: RunningServer) -> None:
    acc = server.account()
    r = server.client.post(
        f"/account/{acc.account_id}/user",
        headers=acc.headers,
        json={
            "email": f"sales-{acc.account_id}@example.com",
            "password": "password1",
            "user_fname": "Sales",
        },
    )
    uid = r.json()["response"]["user_id"]
    apps = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()[
        "response"
    ]
    menu_id = apps[0]["app_id"]
    server.client.put(
        f"/account/{acc.account_id}/voiceapp/{menu_id}",
        headers=acc.headers,
        json={"menu": {"digit_2": {"action": "call", "to": "user", "id": uid}}},
    )
    r = server.client.delete(f"/account/{acc.account_id}/user/{uid}", headers=acc.headers)
    assert r.status_code == 409 and menu_id in r.json()["response"]["detail"]
    assert (
        server.client.delete(
            f"/account/{acc.account_id}/user/{uid}?force=true", headers=acc.headers
        ).status_code
        == 200
    )
    menu = server.client.get(
        f"/account/{acc.account_id}/voiceapp/{menu_id}", headers=acc.headers
    ).json()["response"]["menu"]
    assert menu["digit_2"]["action"] == ""
    r = server.client.delete(f"/account/{acc.account_id}/user/{acc.user_id}", headers=acc.headers)
    assert r.status_code == 409  # the last admin stays


def test_phone_numbers(any_server: RunningServer) -> None:
    acc = any_server.account()
    url = f"/account/{acc.account_id}/phonenumbersubscription"
    r = any_server.client.get(url, headers=acc.headers)
    assert r.json()["response"] == "No entries found"
    assert (
        any_server.client.post(url, headers=acc.headers, json={"phnum": "+46812345678"}).status_code
        == 200
    )
    assert (
        any_server.client.post(url, headers=acc.headers, json={"phnum": "+46812345678"}).status_code
        == 409
    )
    assert (
        any_server.client.post(url, headers=acc.headers, json={"phnum": "812"}).status_code == 400
    )
    app_id = any_server.client.get(
        f"/account/{acc.account_id}/voiceapp", headers=acc.headers
    ).json()["response"][0]["app_id"]
    for form in ({"app_type": "ivr", "app_id": app_id}, app_id):
        r = any_server.client.put(
            f"{url}/+46812345678",
            headers=acc.headers,
            json={"connect_to_type": "app", "connect_to": form},
        )
        assert r.status_code == 200, r.text
        assert r.json()["response"]["connect_to"] == {"app_type": "ivr", "app_id": app_id}
    r = any_server.client.put(
        f"{url}/46812345678",
        headers=acc.headers,
        json={"connect_to_type": "sip", "connect_to": "sip:desk@pbx.example.com"},
    )
    assert r.json()["response"]["connect_to"] == "sip:desk@pbx.example.com"
    r = any_server.client.put(
        f"{url}/46812345678",
        headers=acc.headers,
        json={"connect_to_type": "user", "connect_to": "nope"},
    )
    assert r.status_code == 400
    listed = any_server.client.get(url, headers=acc.headers).json()["response"]
    assert [n["phnum"] for n in listed] == ["+46812345678"]
    assert any_server.client.delete(f"{url}/%2B46812345678", headers=acc.headers).status_code == 200
    assert any_server.client.get(f"{url}/46812345678", headers=acc.headers).status_code == 404


def test_account_get_put(server: RunningServer) -> None:
    acc = server.account(name="Acme")
    url = f"/account/{acc.account_id}"
    assert server.client.get(url, headers=acc.headers).json()["response"]["name"] == "Acme"
    r = server.client.put(
        url, headers=acc.headers, json={"timezone": "Europe/Stockholm", "name": "Acme AB"}
    )
    assert r.json()["response"]["timezone"] == "Europe/Stockholm"
    r = server.client.put(url, headers=acc.headers, json={"timezone": "Mars/Olympus"})
    assert r.status_code == 400 and r.json()["response"]["detail"].startswith("timezone")
