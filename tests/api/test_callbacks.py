"""Callback calls through the API: every bad input is a 400 naming the field, on SQLite and
PostgreSQL, and nothing is placed; a node without SIP says so with 503."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Account, RunningServer, base_settings, run_server

URL = "/make-calls/call/call-back"


@pytest.fixture
def trunk_server(tmp_path: Path, database_url: str) -> Iterator[RunningServer]:
    """A node with a trunk configured (SIP itself off: nothing can be placed), both databases."""
    yield from run_server(base_settings(tmp_path, database_url, sip_trunk="sip:127.0.0.1:9"))


def _error(r: httpx.Response, status: int, code: str, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "failed" and body["response"]["code"] == code, body
    for word in words:
        assert word in body["response"]["detail"], body


def _user(server: RunningServer, acc: Account, name: str, **fields: Any) -> dict[str, Any]:
    r = server.client.post(
        f"/account/{acc.account_id}/user",
        headers=acc.headers,
        json={
            "user_fname": name,
            "email": f"{name.lower()}-{acc.account_id}@example.com",
            "password": "password1",
            **fields,
        },
    )
    assert r.status_code == 200, r.text
    return dict(r.json()["response"])


def _number(server: RunningServer, acc: Account, phnum: str, **connect: Any) -> None:
    r = server.client.post(
        f"/account/{acc.account_id}/phonenumbersubscription",
        headers=acc.headers,
        json={"phnum": phnum, **connect},
    )
    assert r.status_code == 200, r.text


def test_every_bad_input_is_a_400_naming_the_field(trunk_server: RunningServer) -> None:
    server = trunk_server
    acc = server.account()
    other = server.account()
    nobody = _user(server, acc, "Nobody")  # no phone, no sip_uri, no phnum
    stranger = _user(server, other, "Stranger", phnum="+46701111111")
    _number(server, acc, "+46812345600")

    def post(body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return server.client.post(URL, headers=headers or acc.headers, json=body)

    good = {"call1": "+46701234567", "call2": "+46707654321"}
    _error(post({"call2": "+46707654321"}), 400, "missing_field", "call1")
    _error(post({"call1": "+46701234567"}), 400, "missing_field", "call2")
    _error(post({**good, "call1": None}), 400, "missing_field", "call1")
    _error(post({**good, "call1": 46701234567}), 400, "invalid_field", "call1")
    _error(post({**good, "call2": ["+46707654321"]}), 400, "invalid_field", "call2")
    _error(post({**good, "show_1": 46812345600}), 400, "invalid_field", "show_1")
    _error(post({**good, "call3": "+46700000000"}), 400, "invalid_field", "call3")
    _error(post({**good, "call1": ""}), 400, "invalid_field", "call1")
    _error(post({**good, "call1": "+46-70-12ab"}), 400, "invalid_field", "call1", "E.164")
    _error(post({**good, "call2": "+0"}), 400, "invalid_field", "call2")
    _error(post({**good, "call1": "call me"}), 400, "invalid_field", "call1", "SIP address")
    # Digits without + are a user id or nothing: never dialled as a number.
    _error(post({**good, "call1": "46701234567"}), 400, "unknown_reference", "call1", "+")
    _error(post({**good, "call2": "1234567890"}), 400, "unknown_reference", "call2")
    _error(post({**good, "call2": "1" * 300}), 400, "unknown_reference", "call2")
    _error(post({**good, "call2": "Anna@" + "x" * 300 + ".se"}), 400, "unknown_reference")
    # A user of another account is not a user of this one, by id or e-mail.
    _error(post({**good, "call2": stranger["user_id"]}), 400, "unknown_reference", "call2")
    _error(post({**good, "call2": stranger["email"]}), 400, "unknown_reference", "call2")
    _error(post({**good, "call1": "anna@example.com"}), 400, "unknown_reference", "sip:")
    _error(post({**good, "call1": "sip:"}), 400, "invalid_field", "call1")
    _error(post({**good, "call1": "sip:@"}), 400, "invalid_field", "call1")
    domain = server.settings.sip_domain
    _error(post({**good, "call2": f"sip:9999999999@{domain}"}), 400, "unknown_reference", "call2")
    _error(post({**good, "call2": f"sip:{'9' * 250}@{domain}"}), 400, "unknown_reference", "call2")
    # A user with nothing to ring: the transfers' rule says why.
    _error(post({**good, "call1": nobody["user_id"]}), 400, "invalid_field", "call1", "no phone")
    _error(post({**good, "call1": nobody["email"]}), 400, "invalid_field", "call1", "no phone")
    _error(post({**good, "call2": "+4670 123 45 67"}), 400, "invalid_field", "call2", "same")
    # Caller ids: the account's numbers or automatic.
    _error(post({**good, "show_1": "+46899999999"}), 400, "invalid_field", "show_1", "+46812345600")
    _error(post({**good, "show_2": "the boss"}), 400, "invalid_field", "show_2", "automatic")
    _error(post({**good, "show_2": "+46812345600\u0000"}), 400, "invalid_field", "show_2")
    _error(post({**good, "app_id": 7}), 400, "invalid_field", "app_id")
    _error(post([good]), 400, "invalid_field")
    _error(post({**good, "call1": "x" * 400}), 400, "invalid_field", "call1")
    _error(server.client.post(URL, json=good), 401, "unauthorized")
    _error(post(good, {"Authorization": "Bearer nonsense"}), 401, "unauthorized")
    r = server.client.post(
        URL, headers={**acc.headers, "Content-Type": "application/json"}, content=b"{call1"
    )
    _error(r, 400, "malformed_json")
    # The same requests, right: this node has no SIP, so nothing is placed (503, not a 500).
    for body in (
        good,
        {**good, "show_1": "46812345600", "show_2": "automatic", "app_id": "CRM"},
        {"call1": "sip:anna@pbx.example.com", "call2": "+1 (212) 555-1234"},
        {"call1": "+46701234567", "call2": "sips:bob@pbx.example.com;transport=tls"},
    ):
        _error(post(body), 503, "unavailable", "SIP is off")


def test_numbers_need_a_trunk(any_server: RunningServer) -> None:
    acc = any_server.account()
    own = _user(any_server, acc, "Own", phnum="+46701112222")
    r = any_server.client.post(
        URL, headers=acc.headers, json={"call1": "sip:anna@pbx.example.com", "call2": "+4670123"}
    )
    _error(r, 400, "invalid_field", "call2", "--sip-trunk")
    # A user reached only through their phnum needs it too.
    r = any_server.client.post(
        URL, headers=acc.headers, json={"call1": own["user_id"], "call2": "sip:b@example.com"}
    )
    _error(r, 400, "invalid_field", "call1", "--sip-trunk")
    # A regular user of the account may ask as well (here the node has no SIP: 503).
    _user(any_server, acc, "Rita", type="regular")
    rita = any_server.login(f"rita-{acc.account_id}@example.com", "password1")
    r = any_server.client.post(
        URL,
        headers={"Authorization": f"Bearer {rita['access_token']}"},
        json={"call1": "sip:anna@pbx.example.com", "call2": "sip:bob@pbx.example.com"},
    )
    _error(r, 503, "unavailable")


def test_the_docs_show_the_callback(server: RunningServer) -> None:
    document = server.client.get("/openapi.json").json()
    operation = document["paths"][URL]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CallbackIn"
    )
    assert {"200", "400", "401", "503"} <= set(operation["responses"])
    errors = server.client.get("/globaldata/errors").json()["response"]
    assert any(e["code"] == "unavailable" for e in errors)
