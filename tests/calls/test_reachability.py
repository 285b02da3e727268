"""validate, simulate and a real call agree on who can be rung now (registrations, the trunk),
and `call` to `other` takes a number or a SIP address; an app's own address enters the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.calls.conftest import (
    ended,
    free_udp_port,
    rtp_range,
    run_sipp,
    start_target,
    wait_for,
)
from tests.conftest import Account, RunningServer, base_settings, run_server

PHONE_PASSWORD = "desk-phone-pw-1"


@pytest.fixture
def sip_node(tmp_path: Path, database_url: str) -> Iterator[RunningServer]:
    """A node answering SIP without a trunk, on SQLite and (second run) PostgreSQL."""
    settings = base_settings(
        tmp_path, database_url, sip_port=free_udp_port(), rtp_ports=rtp_range()
    )
    yield from run_server(settings)


@pytest.fixture
def sqlite_sip_node(tmp_path: Path) -> Iterator[RunningServer]:
    """A node answering SIP without a trunk, on SQLite."""
    yield from run_server(base_settings(tmp_path, sip_port=free_udp_port(), rtp_ports=rtp_range()))


def _menu(node: RunningServer, acc: Account, menu: dict[str, Any], **extra: Any) -> str:
    apps = node.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()
    app_id = next(a["app_id"] for a in apps["response"] if a["app_type"] == "ivr")
    r = node.client.put(
        f"/account/{acc.account_id}/voiceapp/{app_id}",
        headers=acc.headers,
        json={"play_welcome": "no", "menu": menu, **extra},
    )
    assert r.status_code == 200, r.text
    return str(app_id)


def _problems(node: RunningServer, acc: Account, app_id: str) -> dict[str, Any]:
    r = node.client.get(
        f"/account/{acc.account_id}/voiceapp/{app_id}/validate", headers=acc.headers
    )
    assert r.status_code == 200, r.text
    return dict(r.json()["response"])


def _simulated(node: RunningServer, acc: Account, app_id: str, keys: str) -> dict[str, Any]:
    r = node.client.post(
        f"/account/{acc.account_id}/voiceapp/{app_id}/simulate",
        headers=acc.headers,
        json={"caller": "+46701234567", "keys": keys},
    )
    assert r.status_code == 200, r.text
    return dict(r.json()["response"])


def _transfers(transcript: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in transcript["entries"] if e["kind"] == "transfer"]


def _last_call(node: RunningServer, acc: Account) -> dict[str, Any]:
    rows = wait_for(
        lambda: ended(node.client.get(f"/account/{acc.account_id}/call", headers=acc.headers))
    )
    return dict(rows[0])


def test_a_user_reachable_only_on_a_registered_phone(
    sip_node: RunningServer, tmp_path: Path
) -> None:
    node = sip_node
    acc = node.account()
    r = node.client.put(
        f"/account/{acc.account_id}/user/{acc.user_id}",
        headers=acc.headers,
        json={"sip_password": PHONE_PASSWORD},
    )
    assert r.status_code == 200, r.text
    app_id = _menu(node, acc, {"digit_1": {"action": "call", "to": "user", "id": acc.user_id}})

    # No phone registered yet: a warning (it may register any time), and a call would fail.
    checked = _problems(node, acc, app_id)
    assert checked["ok"] is True
    [problem] = checked["problems"]
    assert (problem["severity"], problem["code"], problem["field"]) == (
        "warning",
        "user_unreachable",
        "menu.digit_1",
    )
    assert "not reachable now: no phone registered" in problem["detail"]
    [ring] = _transfers(_simulated(node, acc, app_id, "1"))
    assert ring["result"] == "no_phone" and "no phone registered" in ring["text"]

    # The desk phone registers: validate, simulate and a real call all reach it.
    phone_port = free_udp_port()
    run_sipp(
        node,
        "register.xml",
        tmp_path,
        acc.user_id,
        values={"domain": node.settings.sip_domain},
        local_port=phone_port,
        extra=("-au", acc.user_id, "-ap", PHONE_PASSWORD),
    )
    assert _problems(node, acc, app_id)["problems"] == []
    transcript = _simulated(node, acc, app_id, "1")
    assert transcript["outcome"]["kind"] == "transferred"
    phone = start_target(
        "callee_hangs_up.xml",
        tmp_path,
        {
            "ruri_user": acc.user_id,
            "from_user": r"\+46701234567",
            "ring_ms": "300",
            "hold_ms": "2000",
            "callee_pt": "0",
            "callee_codec": "PCMU",
        },
        extra=("-rtp_echo",),
        port=phone_port,
    )
    try:
        run_sipp(
            node,
            "transfer_talk.xml",
            tmp_path,
            app_id,
            values={"key": "1", "wait_ms": "800", "ring_wait_ms": "3500", "bye_timeout": "20000"},
        )
        phone.finish()
    finally:
        phone.proc.kill()
    call = _last_call(node, acc)
    assert call["outcome"] == "transferred"
    [leg] = call["transfers"]
    assert leg["status"] == "answered" and leg["uri"].endswith(f"127.0.0.1:{phone_port}")


def test_numbers_need_a_trunk_in_validate_simulate_and_the_real_call(
    sqlite_sip_node: RunningServer, tmp_path: Path
) -> None:
    node = sqlite_sip_node
    acc = node.account()
    app_id = _menu(
        node,
        acc,
        {
            "digit_1": {"action": "call", "to": "phnum", "id": "+46812345678"},
            "digit_2": {"action": "hangup"},
            "digit_3": {"action": "call", "to": "other", "id": "+46812345679"},
        },
    )
    checked = _problems(node, acc, app_id)
    assert checked["ok"] is False
    found = {p["field"]: (p["severity"], p["code"]) for p in checked["problems"]}
    assert found == {"menu.digit_1": ("error", "no_trunk"), "menu.digit_3": ("error", "no_trunk")}
    transcript = _simulated(node, acc, app_id, "1")
    [ring] = _transfers(transcript)
    assert ring["result"] == "no_trunk" and "--sip-trunk" in ring["text"]
    assert transcript["outcome"]["kind"] != "transferred"
    # The real call: "unavailable", the menu again; the caller then presses 2 (hang up).
    run_sipp(
        node,
        "transfer_then_key.xml",
        tmp_path,
        app_id,
        values={
            "first": "1",
            "wait_ms": "800",
            "second": "2",
            "gap_ms": "7000",
            "bye_timeout": "15000",
        },
    )
    call = _last_call(node, acc)
    [leg] = call["transfers"]
    assert leg["status"] == "no_trunk" and "--sip-trunk" in leg["detail"]
    assert call["keys"] == "12" and call["outcome"] == "hangup"


def test_other_takes_a_sip_address_and_an_apps_own_address_enters_it(
    sip_node: RunningServer, tmp_path: Path
) -> None:
    node = sip_node
    acc = node.account()
    apps = node.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()
    box = next(a for a in apps["response"] if a["app_type"] == "mailbox")
    menu = {
        # What the hosted service's clients send: the app's own sip_address.
        "digit_1": {"action": "call", "to": "other", "id": box["sip_address"]},
        "digit_2": {"action": "call", "to": "other", "id": "sip:desk@pbx.example.com"},
        "digit_3": {"action": "call", "to": "other", "id": "+46812345678"},
    }
    app_id = _menu(node, acc, menu)
    shown = node.client.get(
        f"/account/{acc.account_id}/voiceapp/{app_id}", headers=acc.headers
    ).json()["response"]["menu"]
    assert {k: shown[k] for k in menu} == menu
    bad = node.client.put(
        f"/account/{acc.account_id}/voiceapp/{app_id}",
        headers=acc.headers,
        json={"menu": {"digit_4": {"action": "call", "to": "other", "id": "not an address"}}},
    )
    assert bad.status_code == 400 and "menu.digit_4.id" in bad.json()["response"]["detail"]

    transcript = _simulated(node, acc, app_id, "1")
    assert [e["app_id"] for e in transcript["entries"] if e["kind"] == "app"] == [
        app_id,
        box["app_id"],
    ]
    assert _transfers(transcript) == []
    found = {p["field"]: p["code"] for p in _problems(node, acc, app_id)["problems"]}
    assert "menu.digit_1" not in found and "menu.digit_2" not in found
    assert found.get("menu.digit_3") == "no_trunk"  # this node has no trunk

    if "sqlite" not in node.settings.effective_database_url:
        return  # the stored shape is what needs both databases; one real call is enough
    node.client.put(
        f"/account/{acc.account_id}/voiceapp/{box['app_id']}",
        headers=acc.headers,
        json={"greeting_prompt": "no"},
    )
    run_sipp(
        node,
        "menu_key_info.xml",
        tmp_path,
        app_id,
        values={"key": "1", "wait_ms": "800", "bye_timeout": "20000"},
    )
    call = _last_call(node, acc)
    assert call["apps"] == [app_id, box["app_id"]] and call["transfers"] == []
