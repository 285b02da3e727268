"""Password guessing over SIP and the token endpoint: the guesser is refused without a check,
the owner elsewhere gets in, and two nodes on one database refuse alike."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from openivr import security
from openivr.sip.digest import Challenge
from openivr.sip.message import SipResponse
from openivr.store.db import open_database
from openivr.store.models import SecurityEvent
from tests.calls.conftest import free_udp_port, rtp_range
from tests.conftest import Account, RunningServer, base_settings, run_server
from tests.sip.conftest import Dialogue, RawPeer

SIP_PASSWORD = "desk-phone-pass-1"
BASIC = ("sonetel-api", "sonetel-api")
ATTACKER = "127.0.0.2"
OWNER = "127.0.0.1"


def _sip_user(node: RunningServer) -> Account:
    acc = node.account()
    r = node.client.put(
        f"/account/{acc.account_id}/user/{acc.user_id}",
        headers=acc.headers,
        json={"sip_password": SIP_PASSWORD},
    )
    assert r.status_code == 200, r.text
    return acc


async def _register(
    peer: RawPeer, port: int, user_id: str, password: str
) -> tuple[SipResponse, bool]:
    """One REGISTER with the digest dance; the final answer and whether a password went."""
    dialogue = Dialogue(peer.port, user=user_id)
    extra = "Expires: 600\r\n"
    peer.send(port, dialogue.request("REGISTER", extra=extra))
    first = await peer.response()
    if first.status != 401:
        return first, False
    answer = Challenge.parse(first.headers.get("WWW-Authenticate") or "").answer(
        "REGISTER", f"sip:{user_id}@127.0.0.1", user_id, password
    )
    dialogue.cseq += 1
    dialogue.branch += "x"
    peer.send(port, dialogue.request("REGISTER", extra=f"{extra}Authorization: {answer}\r\n"))
    return await peer.response(), True


async def _failures(url: str, **where: Any) -> int:
    async with open_database(url) as (_engine, sessions):
        async with sessions() as db:
            query = select(func.count()).select_from(SecurityEvent)
            for name, value in where.items():
                query = query.where(getattr(SecurityEvent, name) == value)
            return int(await db.scalar(query) or 0)


@pytest.fixture
def two_nodes(tmp_path: Path, database_url: str) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two nodes with SIP on, sharing one database (SQLite file, then PostgreSQL)."""
    # The flood limit would hold this fast run back before the guessing limit could; it is
    # tested on its own (test_flood.py).
    settings = base_settings(
        tmp_path,
        database_url,
        sip_port=free_udp_port(),
        rtp_ports=rtp_range(),
        sip_rate_limit=100000.0,
    )
    for a in run_server(settings):
        other = replace(settings, sip_port=free_udp_port(), rtp_ports=rtp_range(), node_name="b")
        for b in run_server(other):
            yield a, b


def test_a_sip_guessing_run_is_banned_on_both_nodes_and_the_owner_still_registers(
    two_nodes: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_nodes
    acc = _sip_user(a)

    async def scenario() -> dict[str, int]:
        attacker = await RawPeer.open(ATTACKER)
        owner = await RawPeer.open(OWNER)
        seen = {"wrong": 0, "refused": 0, "checked": 0}
        try:
            # A few hundred guesses, as an audit tool sends them, all at node a.
            for n in range(300):
                answer, sent_password = await _register(
                    attacker, a.settings.sip_port, acc.user_id, f"guess-{n}"
                )
                assert answer.status == 403, answer.reason
                seen["checked"] += sent_password
                if "too many" in answer.reason:
                    seen["refused"] += 1
                    assert int(answer.headers.get("Retry-After") or 0) > 500
                else:
                    seen["wrong"] += 1
            # The other node refuses the guesser too, even with the right password.
            right, _ = await _register(attacker, b.settings.sip_port, acc.user_id, SIP_PASSWORD)
            assert right.status == 403 and "too many" in right.reason
            # The owner's phone, from an address that never failed, registers on either node.
            for node in (b, a):
                ok, _ = await _register(owner, node.settings.sip_port, acc.user_id, SIP_PASSWORD)
                assert ok.status == 200, ok.reason
        finally:
            attacker.close()
            owner.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen["wrong"] == 10  # only ten passwords were ever checked
    assert seen["refused"] == 290
    url = a.settings.effective_database_url
    assert asyncio.run(_failures(url, kind="failure", source=ATTACKER)) == 10

    listed = a.client.get(f"/account/{acc.account_id}/security-event", headers=acc.headers)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["resource"] == "security_event" and body["status"] == "success"
    events = body["response"]
    failures = [e for e in events if e["kind"] == "failure"]
    assert len(failures) == 10
    assert {(e["reason"], e["channel"], e["source"], e["user_id"]) for e in failures} == {
        ("wrong_password", "sip", ATTACKER, acc.user_id)
    }
    bans = {e["reason"]: e for e in events if e["kind"] == "ban"}
    assert set(bans) == {"address_banned", "user_locked"}
    assert bans["user_locked"]["detail"]["failures"] == 10
    assert 590 <= bans["address_banned"]["detail"]["seconds"] <= 600
    only_bans = b.client.get(
        f"/account/{acc.account_id}/security-event?kind=ban&reason=user_locked",
        headers=acc.headers,
    ).json()["response"]
    assert [e["reason"] for e in only_bans] == ["user_locked"]


def _login(
    client: httpx.Client, username: str, password: str, forwarded: str = ""
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": username, "password": password},
        auth=BASIC,
        headers=headers,
    )


def _client_from(node: RunningServer, address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=node.base_url, transport=transport, timeout=30)


def test_token_guessing_gets_429_and_the_owner_elsewhere_logs_in(server: RunningServer) -> None:
    acc = server.account()
    with _client_from(server, ATTACKER) as attacker:
        for n in range(10):
            r = _login(attacker, acc.email, f"guess-{n}")
            assert r.status_code == 401, r.text
        refused = _login(attacker, acc.email, acc.password)  # right, but not even looked at
        assert refused.status_code == 429
        assert refused.json()["error"] == "temporarily_unavailable"
        assert 590 <= int(refused.headers["Retry-After"]) <= 600
        # The address is banned for every user, known or not.
        other = _login(attacker, "someone-else@example.com", "whatever")
        assert other.status_code == 429
    # The owner, from an address with no failures, logs in while the lock holds.
    assert _login(server.client, acc.email, acc.password).status_code == 200

    events = server.client.get(
        f"/account/{acc.account_id}/security-event?channel=api", headers=acc.headers
    ).json()["response"]
    assert [e["kind"] for e in events].count("failure") == 10
    assert {e["source"] for e in events} == {ATTACKER}
    assert all(e["username"] == acc.email for e in events)
    # A regular user of the account may not read them; another account sees none of them.
    stranger = server.account()
    foreign = server.client.get(
        f"/account/{acc.account_id}/security-event", headers=stranger.headers
    )
    assert foreign.status_code == 403
    own = server.client.get(
        f"/account/{stranger.account_id}/security-event", headers=stranger.headers
    )
    assert own.json()["response"] == []


def test_a_regular_user_cannot_list_security_events(server: RunningServer) -> None:
    acc = server.account()
    created = server.client.post(
        f"/account/{acc.account_id}/user",
        headers=acc.headers,
        json={
            "user_fname": "Reg",
            "user_lname": "Ular",
            "email": f"reg-{secrets.token_hex(3)}@example.com",
            "password": "regular-pass-1",
            "type": "regular",
        },
    )
    assert created.status_code in (200, 201), created.text
    email = created.json()["response"]["email"]
    token = server.login(email, "regular-pass-1")["access_token"]
    r = server.client.get(
        f"/account/{acc.account_id}/security-event",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 403 and r.json()["response"]["code"] == "forbidden"


def test_unknown_names_are_refused_like_known_ones(server: RunningServer) -> None:
    acc = server.account()
    with _client_from(server, "127.0.0.3") as guesser:
        known = [_login(guesser, acc.email, f"g{n}").status_code for n in range(5)]
    with _client_from(server, "127.0.0.4") as guesser:
        unknown = [_login(guesser, "nobody@example.com", f"g{n}").status_code for n in range(5)]
    assert known == unknown == [401] * 5
    # Ten failures on a name nobody has lock it exactly as they would a real user's.
    with _client_from(server, "127.0.0.5") as guesser:
        more = [_login(guesser, "nobody@example.com", f"h{n}").status_code for n in range(6)]
    assert more == [401] * 5 + [429]


def test_an_unknown_name_costs_a_password_check(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timing is not asserted in tests; what makes it equal is that the same Argon2 work runs.
    checks: list[str] = []
    real = security.verify_password

    def counted(password_hash: str, password: str) -> bool:
        checks.append(password_hash.split("$")[1])
        return real(password_hash, password)

    monkeypatch.setattr(security, "verify_password", counted)
    acc = server.account()
    checks.clear()
    assert _login(server.client, acc.email, "wrong").status_code == 401
    assert _login(server.client, "nobody@example.com", "wrong").status_code == 401
    assert checks == ["argon2id", "argon2id"]


def test_a_trusted_proxy_names_the_client(tmp_path: Path) -> None:
    settings = base_settings(tmp_path, trusted_networks=("127.0.0.0/8",))
    for node in run_server(settings):
        acc = node.account()
        for n in range(10):
            assert _login(node.client, acc.email, f"g{n}", "198.51.100.7").status_code == 401
        assert _login(node.client, acc.email, acc.password, "198.51.100.7").status_code == 429
        # The proxy itself is never banned: another client behind it logs in.
        assert _login(node.client, acc.email, acc.password, "203.0.113.9").status_code == 200
        events = node.client.get(
            f"/account/{acc.account_id}/security-event?kind=failure", headers=acc.headers
        ).json()["response"]
        assert {e["source"] for e in events} == {"198.51.100.7"}
