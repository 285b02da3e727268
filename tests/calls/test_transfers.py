"""Pressing a key connects the caller: bridged to a SIP target, and back to the menu on busy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.calls.conftest import (
    Target,
    ended,
    free_udp_port,
    rtp_range,
    run_sipp,
    start_target,
    wait_for,
)
from tests.conftest import Account, RunningServer, base_settings, run_server


def _menu(server: RunningServer, acc: Account) -> dict[str, Any]:
    apps = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()[
        "response"
    ]
    return next(a for a in apps if a["name"] == "Main menu")


def _set_digit_3(server: RunningServer, acc: Account, uri: str) -> str:
    menu = _menu(server, acc)
    server.client.put(
        f"/account/{acc.account_id}/voiceapp/{menu['app_id']}",
        headers=acc.headers,
        json={"menu": {"digit_3": {"action": "call", "to": "sip", "id": uri}}},
    )
    return str(menu["app_id"])


def _last_call(server: RunningServer, acc: Account) -> dict[str, Any]:
    rows = wait_for(
        lambda: ended(server.client.get(f"/account/{acc.account_id}/call", headers=acc.headers))
    )
    return dict(rows[0])


def _three_then_two(
    server: RunningServer, acc: Account, target: Target, tmp_path: Path, app_id: str, gap_ms: int
) -> dict[str, Any]:
    """A caller presses 3 (the transfer) at 0.8 s and 2 `gap_ms` later, then waits for our
    BYE; the call's record once the target's scenario ended."""
    values = {"first": "3", "wait_ms": "800", "second": "2", "gap_ms": str(gap_ms)}
    run_sipp(
        server, "transfer_then_key.xml", tmp_path, app_id, values={**values, "bye_timeout": "30000"}
    )
    target.finish()
    return _last_call(server, acc)


def test_key_3_bridges_the_caller_to_sales(phone_server: RunningServer, tmp_path: Path) -> None:
    acc = phone_server.account()
    target = start_target(
        "callee_hangs_up.xml",
        tmp_path,
        {
            "ruri_user": "sales",
            "from_user": r"\+46701234567",
            "ring_ms": "500",
            "hold_ms": "5000",
            "callee_pt": "0",
            "callee_codec": "PCMU",
        },
        extra=("-rtp_echo",),
    )
    sales = f"sip:sales@127.0.0.1:{target.port}"
    app_id = _set_digit_3(phone_server, acc, sales)
    # The caller talks, the target echoes; the target hangs up, then we hang up on the caller.
    run_sipp(
        phone_server,
        "transfer_talk.xml",
        tmp_path,
        app_id,
        values={"key": "3", "wait_ms": "800", "ring_wait_ms": "3500", "bye_timeout": "20000"},
    )
    target.finish()
    call = _last_call(phone_server, acc)
    assert call["outcome"] == "transferred"
    [leg] = call["transfers"]
    assert leg["status"] == "answered" and leg["ended_by"] == "target"
    assert leg["target"] == sales  # the address as it is, not sip:sip:...
    assert leg["uri"].startswith("sip:sales@127.0.0.1")
    assert leg["packets_from_target"] > 0 and leg["packets_to_target"] > 0


def test_busy_target_returns_the_caller_to_the_menu(
    phone_server: RunningServer, tmp_path: Path
) -> None:
    acc = phone_server.account()
    target = start_target(
        "callee_busy.xml", tmp_path, {"ruri_user": "sales", "from_user": r"\+46701234567"}
    )
    app_id = _set_digit_3(phone_server, acc, f"sip:sales@127.0.0.1:{target.port}")
    # Busy: "unavailable", the menu again, then the caller presses 2 (hang up) — the menu works.
    menu_url = f"/account/{acc.account_id}/voiceapp/{app_id}"
    phone_server.client.put(
        menu_url, headers=acc.headers, json={"menu": {"digit_2": {"action": "hangup"}}}
    )
    call = _three_then_two(phone_server, acc, target, tmp_path, app_id, gap_ms=9000)
    assert call["keys"] == "32"
    assert call["transfers"][0]["status"] == "busy"
    assert call["outcome"] == "hangup"


def test_a_key_pressed_while_the_target_rings_chooses_nothing_after_it_fails(
    tmp_path: Path,
) -> None:
    # As the engine's rule says (and the simulator shows): the caller pressed 2 (hang up) while
    # the transfer rang; when it fails the menu plays again and the 2 has chosen nothing.
    settings = base_settings(
        tmp_path, sip_port=free_udp_port(), rtp_ports=rtp_range(), transfer_timeout=3.0
    )
    for node in run_server(settings):
        acc = node.account()
        target = start_target(
            "callee_rings.xml", tmp_path, {"ruri_user": "sales", "from_user": r"\+46701234567"}
        )
        app_id = _set_digit_3(node, acc, f"sip:sales@127.0.0.1:{target.port}")
        node.client.put(
            f"/account/{acc.account_id}/voiceapp/{app_id}",
            headers=acc.headers,
            json={
                "play_welcome": "no",
                "menu_timeout": 1,
                "max_retries": 0,
                "menu": {"digit_2": {"action": "hangup"}},
            },
        )
        # 3 at 0.8 s; please-wait (about 2 s), then the target rings; 2 at 4.3 s, while it rings.
        call = _three_then_two(node, acc, target, tmp_path, app_id, gap_ms=3500)
        assert call["keys"] == "32"
        assert call["transfers"][0]["status"] == "no_answer"
        assert call["detail"]["hangup_reason"] == "no input", call
