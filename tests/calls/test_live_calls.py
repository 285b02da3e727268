"""Real SIP calls (SIPp) into running voice apps: keys, voicemail, hang-ups, call records."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openivr.engine import call as engine_call
from openivr.engine.call import CallFlow
from openivr.engine.events import RecordingFinished
from tests.calls.conftest import (
    PCAPS,
    SmtpSink,
    ended,
    free_udp_port,
    rtp_range,
    run_sipp,
    wait_for,
)
from tests.conftest import Account, RunningServer, base_settings, run_server


def _apps(server: RunningServer, acc: Account) -> dict[str, dict[str, Any]]:
    r = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
    return {a["name"]: a for a in r.json()["response"]}


def _calls(server: RunningServer, acc: Account, count: int = 1) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        rows = ended(server.client.get(f"/account/{acc.account_id}/call", headers=acc.headers))
        return rows if len(rows) >= count else None

    return list(wait_for(ready))


def test_a_key_takes_its_action(phone_server: RunningServer, tmp_path: Path) -> None:
    acc = phone_server.account()
    menu = _apps(phone_server, acc)["Main menu"]
    url = f"/account/{acc.account_id}/voiceapp/{menu['app_id']}"
    phone_server.client.put(
        url, headers=acc.headers, json={"menu": {"digit_2": {"action": "hangup"}}}
    )
    run_sipp(
        phone_server,
        "menu_key_info.xml",
        tmp_path,
        menu["app_id"],
        values={"key": "2", "wait_ms": "1000", "bye_timeout": "8000"},
    )
    call = _calls(phone_server, acc)[0]
    assert call["keys"] == "2"
    assert call["outcome"] == "hangup" and call["ended_by"] == "us"
    assert call["apps"] == [menu["app_id"]]
    assert call["from"] == "+46701234567"


def test_rfc4733_key_during_the_welcome_reaches_the_mailbox(
    phone_server: RunningServer, tmp_path: Path
) -> None:
    acc = phone_server.account()
    apps = _apps(phone_server, acc)
    run_sipp(
        phone_server,
        "menu_key_rfc4733.xml",
        tmp_path,
        apps["Main menu"]["app_id"],
        values={
            "key_pcap": str(PCAPS / "dtmf_2833_1.pcap"),
            "key_ms": "500",
            "wait_ms": "2500",
        },
    )
    call = _calls(phone_server, acc)[0]
    assert call["keys"] == "1"
    assert call["apps"] == [apps["Main menu"]["app_id"], apps["Voice Mail"]["app_id"]]
    assert call["outcome"] == "caller_hangup" and call["ended_by"] == "caller"


def test_dialing_the_phone_number_and_the_shortcode(
    phone_server: RunningServer, tmp_path: Path
) -> None:
    acc = phone_server.account()
    apps = _apps(phone_server, acc)
    box = apps["Voice Mail"]["app_id"]
    phone_server.client.post(
        f"/account/{acc.account_id}/phonenumbersubscription",
        headers=acc.headers,
        json={"phnum": "+46812340000", "connect_to_type": "app", "connect_to": box},
    )
    run_sipp(phone_server, "caller_bye.xml", tmp_path, "46812340000", values={"wait_ms": "500"})
    run_sipp(
        phone_server,
        "caller_bye.xml",
        tmp_path,
        apps["Main menu"]["shortcode"],
        values={"wait_ms": "500"},
    )
    calls = _calls(phone_server, acc, 2)
    assert {tuple(c["apps"]) for c in calls} == {(box,), (apps["Main menu"]["app_id"],)}
    assert calls[0]["start_time"] >= calls[1]["start_time"]  # newest first
    url = f"/account/{acc.account_id}/call"
    by_app = phone_server.client.get(f"{url}?app_id={box}", headers=acc.headers).json()["response"]
    assert [c["to"] for c in by_app] == ["46812340000"]
    by_to = phone_server.client.get(f"{url}?to=46812340000", headers=acc.headers).json()["response"]
    assert len(by_to) == 1
    by_caller = phone_server.client.get(f"{url}?from=%2B46701234567", headers=acc.headers)
    assert len(by_caller.json()["response"]) == 2
    later = phone_server.client.get(f"{url}?since=2999-01-01T00:00:00Z", headers=acc.headers)
    assert later.json()["response"] == []


def test_unknown_number_gets_404_and_a_record(phone_server: RunningServer, tmp_path: Path) -> None:
    run_sipp(phone_server, "refused.xml", tmp_path, "4699999999", values={"status": "404"})


def test_voicemail_from_streamed_audio_is_kept_and_mailed(
    phone_server: RunningServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    acc = phone_server.account()
    box = _apps(phone_server, acc)["Voice Mail"]
    url = f"/account/{acc.account_id}/voiceapp/{box['app_id']}"
    phone_server.client.put(
        url,
        headers=acc.headers,
        json={
            "greeting_prompt": "no",
            "goodbye_prompt": "no",
            "deliver_to": "email",
            "deliver_to_details": "owner@example.com",
        },
    )
    run_sipp(
        phone_server,
        "mailbox_message.xml",
        tmp_path,
        box["app_id"],
        values={"audio_ms": "5200", "bye_timeout": "8000"},
    )
    messages = wait_for(
        lambda: phone_server.client.get(f"{url}/voicemail", headers=acc.headers).json()["response"]
    )
    assert len(messages) == 1
    msg = messages[0]
    assert msg["caller"] == "+46701234567"
    assert 4.0 <= msg["duration"] <= 6.5
    wav = phone_server.client.get(msg["audio_url"]).content
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getframerate() == 8000
        frames = w.readframes(w.getnframes())
    import numpy as np

    samples = np.frombuffer(frames, dtype="<i2").astype(float)
    assert np.sqrt(np.mean(samples**2)) > 100  # the streamed speech, not silence
    mail = wait_for(lambda: smtp_sink.messages, timeout=20)[0]
    assert mail["To"] == "owner@example.com"
    assert "+46701234567" in mail["Subject"]
    attachments = [p for p in mail.walk() if p.get_content_type() == "audio/wav"]
    assert attachments and attachments[0].get_payload(decode=True) == wav
    call = _calls(phone_server, acc)[0]
    assert call["outcome"] == "voicemail" and call["detail"]["voicemail_id"] == msg["message_id"]


def test_a_changed_menu_applies_to_the_next_call(
    phone_server: RunningServer, tmp_path: Path
) -> None:
    acc = phone_server.account()
    apps = _apps(phone_server, acc)
    menu, box = apps["Main menu"], apps["Voice Mail"]
    url = f"/account/{acc.account_id}/voiceapp"
    phone_server.client.put(
        f"{url}/{menu['app_id']}",
        headers=acc.headers,
        json={"menu": {"digit_2": {"action": "hangup"}}},
    )
    phone_server.client.put(
        f"{url}/{box['app_id']}",
        headers=acc.headers,
        json={"greeting_prompt": "no", "goodbye_prompt": "no"},
    )
    values = {"key": "2", "wait_ms": "800", "bye_timeout": "15000"}
    run_sipp(phone_server, "menu_key_info.xml", tmp_path, menu["app_id"], values=values)
    first = _calls(phone_server, acc, 1)[0]
    assert first["apps"] == [menu["app_id"]]
    # The node has this account's menu in memory now; the change must still reach the next call.
    phone_server.client.put(
        f"{url}/{menu['app_id']}",
        headers=acc.headers,
        json={"menu": {"digit_2": {"action": "connect", "to": "app", "id": box["app_id"]}}},
    )
    run_sipp(phone_server, "menu_key_info.xml", tmp_path, menu["app_id"], values=values)
    second = _calls(phone_server, acc, 2)[0]
    assert second["apps"] == [menu["app_id"], box["app_id"]]


def test_a_full_mailbox_takes_no_new_message(phone_server: RunningServer, tmp_path: Path) -> None:
    acc = phone_server.account()
    box = _apps(phone_server, acc)["Voice Mail"]
    url = f"/account/{acc.account_id}/voiceapp/{box['app_id']}"
    phone_server.client.put(
        url,
        headers=acc.headers,
        json={"greeting_prompt": "no", "goodbye_prompt": "no", "max_messages": 1},
    )
    run_sipp(
        phone_server,
        "mailbox_message.xml",
        tmp_path,
        box["app_id"],
        values={"audio_ms": "3000", "bye_timeout": "8000"},
    )
    wait_for(
        lambda: phone_server.client.get(f"{url}/voicemail", headers=acc.headers).json()["response"]
    )
    # The second caller hears "unavailable" and is hung up on; nothing is recorded.
    run_sipp(
        phone_server, "wait_for_bye.xml", tmp_path, box["app_id"], values={"bye_timeout": "15000"}
    )
    calls = _calls(phone_server, acc, 2)
    assert calls[0]["outcome"] == "hangup" and "voicemail_id" not in calls[0]["detail"]
    messages = phone_server.client.get(f"{url}/voicemail", headers=acc.headers).json()["response"]
    assert len(messages) == 1


def test_behind_a_record_routing_proxy_our_bye_follows_the_route(
    phone_server: RunningServer, tmp_path: Path
) -> None:
    acc = phone_server.account()
    menu = _apps(phone_server, acc)["Main menu"]
    phone_server.client.put(
        f"/account/{acc.account_id}/voiceapp/{menu['app_id']}",
        headers=acc.headers,
        json={
            "play_welcome": "no",
            "play_menu": "no",
            "menu_timeout": 1,
            "max_retries": 0,
            "menu": {"timeout": {"action": "hangup"}},
        },
    )
    # SIPp fails the call unless the BYE carries both Route headers, in order.
    run_sipp(
        phone_server, "record_routed.xml", tmp_path, menu["app_id"], values={"bye_timeout": "8000"}
    )
    call = _calls(phone_server, acc)[0]
    assert call["ended_by"] == "us"


def test_sip_advertise_is_the_address_callers_are_told(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    # E.g. the public address of a node behind NAT; loopback here (127/8 all reaches lo).
    settings = base_settings(
        tmp_path, sip_port=free_udp_port(), rtp_ports=rtp_range(), sip_advertise="127.0.0.9"
    )
    for node in run_server(settings):
        acc = node.account()
        menu = _apps(node, acc)["Main menu"]
        node.client.put(
            f"/account/{acc.account_id}/voiceapp/{menu['app_id']}",
            headers=acc.headers,
            json={"play_welcome": "no", "play_menu": "no", "menu_timeout": 1, "max_retries": 0},
        )
        run_sipp(
            node,
            "advertised_address.xml",
            tmp_path,
            menu["app_id"],
            values={"advertised": r"127\.0\.0\.9", "bye_timeout": "8000"},
        )


@pytest.fixture
def phone_server_any_db(
    tmp_path: Path, database_url: str, smtp_sink: SmtpSink
) -> Iterator[RunningServer]:
    """A node answering SIP, on SQLite and (second run) PostgreSQL."""
    settings = base_settings(
        tmp_path,
        database_url,
        sip_port=free_udp_port(),
        rtp_ports=rtp_range(),
        smtp_url=f"smtp://127.0.0.1:{smtp_sink.port}",
        smtp_from="voicemail@openivr.test",
    )
    yield from run_server(settings)


def test_a_caller_who_speaks_and_hangs_up_left_a_voicemail_says_the_record(
    phone_server_any_db: RunningServer, tmp_path: Path
) -> None:
    node = phone_server_any_db
    acc = node.account()
    box = _apps(node, acc)["Voice Mail"]
    url = f"/account/{acc.account_id}/voiceapp/{box['app_id']}"
    node.client.put(url, headers=acc.headers, json={"greeting_prompt": "no"})
    # The usual end of a message: the caller says it and hangs up.
    run_sipp(
        node, "mailbox_message_hangup.xml", tmp_path, box["app_id"], values={"audio_ms": "4000"}
    )
    [call] = _calls(node, acc)
    [msg] = node.client.get(f"{url}/voicemail", headers=acc.headers).json()["response"]
    assert (call["outcome"], call["ended_by"]) == ("voicemail", "caller")
    assert call["detail"]["voicemail_id"] == msg["message_id"]
    assert 3.0 <= call["detail"]["voicemail_seconds"] <= 5.0
    assert abs(call["detail"]["voicemail_seconds"] - msg["duration"]) < 0.05
    # Someone looking for who left a message finds this call by its outcome.
    listed = node.client.get(f"/account/{acc.account_id}/call", headers=acc.headers).json()
    assert [c["outcome"] for c in listed["response"]] == ["voicemail"]


def test_a_message_survives_a_failure_of_the_call_flow(
    phone_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug in the flow when the message ends (no real input reaches this; it is injected):
    # what the caller said is kept all the same.
    def broken(self: CallFlow, event: object) -> None:
        raise RuntimeError("a bug in the call flow")

    monkeypatch.setitem(engine_call._HANDLERS, RecordingFinished, broken)
    acc = phone_server.account()
    box = _apps(phone_server, acc)["Voice Mail"]
    url = f"/account/{acc.account_id}/voiceapp/{box['app_id']}"
    phone_server.client.put(url, headers=acc.headers, json={"greeting_prompt": "no"})
    run_sipp(
        phone_server,
        "mailbox_message.xml",
        tmp_path,
        box["app_id"],
        values={"audio_ms": "3000", "bye_timeout": "8000"},
    )
    [call] = _calls(phone_server, acc)
    [msg] = phone_server.client.get(f"{url}/voicemail", headers=acc.headers).json()["response"]
    assert 2.0 <= msg["duration"] <= 4.5
    assert call["outcome"] == "voicemail" and call["detail"]["voicemail_id"] == msg["message_id"]
    assert call["detail"]["hangup_reason"] == "error"
