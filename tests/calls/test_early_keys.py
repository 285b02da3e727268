"""Keys pressed in a call's first moments (type-ahead): a caller who knows the menu presses at
once, by RFC 4733 or SIP INFO, and reaches what the key leads to, as the simulator says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.calls.conftest import PCAPS, ended, run_sipp, wait_for
from tests.conftest import Account, RunningServer

pytestmark = pytest.mark.peer


def _apps(server: RunningServer, acc: Account) -> dict[str, dict[str, Any]]:
    r = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
    return {a["name"]: a for a in r.json()["response"]}


def _call(server: RunningServer, acc: Account) -> dict[str, Any]:
    rows = wait_for(
        lambda: ended(server.client.get(f"/account/{acc.account_id}/call", headers=acc.headers))
    )
    return dict(rows[0])


def _simulated_apps(server: RunningServer, acc: Account, app_id: str) -> list[str]:
    """The apps a simulated caller pressing 1 the moment the call is answered goes through."""
    r = server.client.post(
        f"/account/{acc.account_id}/voiceapp/{app_id}/simulate",
        headers=acc.headers,
        json={"timeline": [{"key": "1", "at": 0}]},
    )
    assert r.status_code == 200, r.text
    return [e["app_id"] for e in r.json()["response"]["entries"] if e["kind"] == "app"]


@pytest.mark.parametrize(
    ("scenario", "values"),
    [
        # RFC 4733 events sent right after the ACK; the caller hangs up 2.5 s later.
        ("menu_key_rfc4733.xml", {"key_pcap": str(PCAPS / "dtmf_2833_1.pcap"), "key_ms": "0"}),
        # SIP INFO right after the ACK; the mailbox records silence and hangs up.
        ("menu_key_info.xml", {"key": "1", "wait_ms": "0", "bye_timeout": "20000"}),
    ],
    ids=["rfc4733", "info"],
)
def test_a_key_sent_right_after_the_ack_reaches_the_mailbox(
    phone_server: RunningServer, tmp_path: Path, scenario: str, values: dict[str, str]
) -> None:
    acc = phone_server.account()
    apps = _apps(phone_server, acc)
    menu, box = apps["Main menu"]["app_id"], apps["Voice Mail"]["app_id"]
    run_sipp(phone_server, scenario, tmp_path, menu, values={"wait_ms": "2500", **values})
    call = _call(phone_server, acc)
    assert call["keys"] == "1"
    assert call["apps"] == [menu, box] == _simulated_apps(phone_server, acc, menu)


def test_a_key_during_an_announcement_is_kept_for_the_menu_after_it(
    phone_server: RunningServer, tmp_path: Path
) -> None:
    acc = phone_server.account()
    apps = _apps(phone_server, acc)
    menu, box = apps["Main menu"]["app_id"], apps["Voice Mail"]["app_id"]
    r = phone_server.client.post(
        f"/account/{acc.account_id}/voiceapp",
        headers=acc.headers,
        json={
            "app_type": "ivr",
            "name": "Intro",
            "play_menu": "no",
            "final_action": {"action": "connect", "to": "app", "id": menu},
        },
    )
    assert r.status_code == 200, r.text
    intro = r.json()["response"]["app_id"]
    # The key comes while the announcement plays (it takes no keys); the menu after it takes it.
    run_sipp(
        phone_server,
        "menu_key_info.xml",
        tmp_path,
        intro,
        values={"key": "1", "wait_ms": "0", "bye_timeout": "30000"},
    )
    call = _call(phone_server, acc)
    assert call["keys"] == "1"
    assert call["apps"] == [intro, menu, box] == _simulated_apps(phone_server, acc, intro)
