"""Recording a prompt by phone: a SIPp phone registers as a user, dials *22, keys a prompt's
record code, speaks (a tone from a pcap), keeps it; a caller into the menu then hears it."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.calls.conftest import ended, free_udp_port, rtp_range, run_sipp, wait_for
from tests.calls.rtp_audio import RtpEar, dominant_hz, loud_part, write_tone_pcap
from tests.conftest import Account, RunningServer, base_settings, free_port, run_server

PHONE_PASSWORD = "desk-phone-secret-1"
FIRST_TONE, SECOND_TONE = 600.0, 1400.0


@pytest.fixture
def sip_node(tmp_path: Path, database_url: str) -> Iterator[RunningServer]:
    """A node answering SIP, on SQLite and (second run) PostgreSQL."""
    yield from run_server(
        base_settings(tmp_path, database_url, sip_port=free_udp_port(), rtp_ports=rtp_range())
    )


def _register(node: RunningServer, acc: Account, tmp_path: Path) -> int:
    """Give the account's user a SIP password and register a SIPp phone as them; its port."""
    r = node.client.put(
        f"/account/{acc.account_id}/user/{acc.user_id}",
        headers=acc.headers,
        json={"sip_password": PHONE_PASSWORD},
    )
    assert r.status_code == 200, r.text
    port = free_udp_port()
    run_sipp(
        node,
        "register.xml",
        tmp_path,
        acc.user_id,
        values={"domain": node.settings.sip_domain},
        local_port=port,
        extra=("-au", acc.user_id, "-ap", PHONE_PASSWORD),
    )
    return port


def _welcome(node: RunningServer, acc: Account) -> tuple[str, dict[str, Any]]:
    """The main menu's id and its welcome prompt."""
    apps = node.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()
    menu = next(a for a in apps["response"] if a["name"] == "Main menu")
    prompts = node.client.get(
        f"/account/{acc.account_id}/voiceapp/{menu['app_id']}/prompt", headers=acc.headers
    ).json()["response"]
    return menu["app_id"], next(p for p in prompts if p["key"] == "welcome")


def _prompt(node: RunningServer, acc: Account, prompt_id: str) -> dict[str, Any]:
    r = node.client.get(f"/prompt/{prompt_id}", headers=acc.headers)
    assert r.status_code == 200, r.text
    return dict(r.json()["response"])


class Steps:
    """What the SIPp phone does after the call is answered, as scenario XML."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.cseq = 1

    def wait(self, ms: int) -> Steps:
        self.parts.append(f'  <pause milliseconds="{ms}"/>')
        return self

    def keys(self, keys: str, gap_ms: int = 150) -> Steps:
        for key in keys:
            self.cseq += 1
            self.wait(gap_ms)
            self.parts.append(
                f"""  <send retrans="500"><![CDATA[
      INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[from_user]@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {self.cseq} INFO
      Contact: <sip:[from_user]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={key}
      Duration=160
  ]]></send>
  <recv response="200"/>"""
            )
        return self

    def speak(self, pcap: Path, ms: int) -> Steps:
        """Play the pcap (after the beep) and wait until it has been played."""
        self.parts.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
        return self.wait(ms)

    def xml(self) -> str:
        return "\n".join(self.parts)


def _record_call(
    node: RunningServer, acc: Account, tmp_path: Path, port: int, steps: Steps
) -> dict[str, Any]:
    """Dial *22 from the registered phone's port, run the steps; the call's record."""

    def calls() -> list[dict[str, Any]]:
        return ended(node.client.get(f"/account/{acc.account_id}/call", headers=acc.headers))

    before = len(calls())
    run_sipp(
        node,
        "record_prompt.xml",
        tmp_path,
        "*22",
        values={"steps": steps.xml(), "from_user": acc.user_id, "bye_timeout": "20000"},
        local_port=port,
        timeout=90,
    )

    def this_call() -> dict[str, Any] | None:
        rows = calls()
        return rows[0] if len(rows) > before else None

    return dict(wait_for(this_call))


def _message(node: RunningServer, view: dict[str, Any]) -> np.ndarray:
    got = node.client.get(view["message_url"])
    assert got.status_code == 200
    with wave.open(io.BytesIO(got.content)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def test_a_registered_phone_records_a_prompt_that_a_menu_caller_then_hears(
    sip_node: RunningServer, tmp_path: Path
) -> None:
    node = sip_node
    acc = node.account()
    port = _register(node, acc, tmp_path)
    menu_id, welcome = _welcome(node, acc)
    assert welcome["exists"] is False  # the default welcome, spoken
    code_before = welcome["record_code"]
    tone = write_tone_pcap(tmp_path / "tone.pcap", FIRST_TONE, 3.0)
    steps = (
        Steps()
        .wait(800)  # into "enter the prompt number, then hash"
        .keys(f"{welcome['record_code']}#")
        .wait(1200)  # the beep
        .speak(tone, 3300)
        .keys("#")
        .wait(1500)  # hearing it back
        .keys("1")
    )
    call = _record_call(node, acc, tmp_path, port, steps)
    assert call["outcome"] == "prompt_recorded"
    assert call["detail"]["prompt_id"] == welcome["prompt_id"]
    assert call["keys"].endswith("#1")

    saved = _prompt(node, acc, welcome["prompt_id"])
    assert saved["exists"] is True and "recorded by phone" in saved["file_details"]
    assert saved["record_code"] == code_before  # a prompt's code never changes
    assert 2.5 < saved["audio_length"] < 5.0
    assert abs(dominant_hz(loud_part(_message(node, saved))) - FIRST_TONE) < 15

    # A caller into the menu hears the tone as its welcome.
    ear = RtpEar(free_port())
    try:
        run_sipp(
            node,
            "caller_bye.xml",
            tmp_path,
            menu_id,
            values={"media_port": str(ear.port), "wait_ms": "3500"},
        )
    finally:
        ear.close()
    heard = ear.heard("PCMU")
    assert len(heard) > 2 * 8000
    assert abs(dominant_hz(loud_part(heard)) - FIRST_TONE) < 15


def test_two_records_again_silence_and_star_keep_the_old_message(
    sip_node: RunningServer, tmp_path: Path
) -> None:
    node = sip_node
    acc = node.account()
    port = _register(node, acc, tmp_path)
    _menu_id, welcome = _welcome(node, acc)
    first = write_tone_pcap(tmp_path / "first.pcap", FIRST_TONE, 2.0)
    second = write_tone_pcap(tmp_path / "second.pcap", SECOND_TONE, 2.0)
    code = f"{welcome['record_code']}#"

    # 2 throws the first take away; the second is kept.
    steps = (
        Steps()
        .wait(800)
        .keys(code)
        .wait(1200)
        .speak(first, 2300)
        .keys("#")
        .wait(800)
        .keys("2")
        .wait(1200)
        .speak(second, 2300)
        .keys("#")
        .wait(800)
        .keys("1")
    )
    call = _record_call(node, acc, tmp_path, port, steps)
    assert call["outcome"] == "prompt_recorded"
    kept = _prompt(node, acc, welcome["prompt_id"])
    assert abs(dominant_hz(loud_part(_message(node, kept))) - SECOND_TONE) < 15

    # A silent take is refused as a silent upload is: "no message was recorded", nothing changes.
    steps = Steps().wait(800).keys(code).wait(2500).keys("#").wait(500).keys("1")
    call = _record_call(node, acc, tmp_path, port, steps)
    assert call["outcome"] == "hangup" and call["detail"]["hangup_reason"] == "not saved"
    assert _prompt(node, acc, welcome["prompt_id"])["record_id"] == kept["record_id"]

    # * cancels: the message saved before stays, byte for byte.
    steps = Steps().wait(800).keys(code).wait(1200).speak(first, 2300).keys("#").wait(800)
    call = _record_call(node, acc, tmp_path, port, steps.keys("*"))
    assert call["outcome"] == "hangup" and call["keys"].endswith("*")
    after = _prompt(node, acc, welcome["prompt_id"])
    assert after["record_id"] == kept["record_id"]
    assert abs(dominant_hz(loud_part(_message(node, after))) - SECOND_TONE) < 15


def test_callers_who_are_not_a_registered_user_never_reach_the_recorder(
    sip_node: RunningServer, tmp_path: Path
) -> None:
    node = sip_node
    acc = node.account()
    registered = _register(node, acc, tmp_path)
    assert registered
    # The user's id in From, but not from the phone that registered: what a wrong number gets.
    for caller, port in ((acc.user_id, free_udp_port()), ("+46701234567", registered)):
        run_sipp(
            node,
            "refused_from.xml",
            tmp_path,
            "*22",
            values={"status": "404", "from_user": caller},
            local_port=port,
        )
    rows = node.client.get(f"/account/{acc.account_id}/call", headers=acc.headers).json()
    assert all(row["outcome"] != "prompt_recorded" for row in rows["response"])


def test_a_user_of_another_account_records_only_their_own_accounts_prompts(
    sip_node: RunningServer, tmp_path: Path
) -> None:
    node = sip_node
    ours, theirs = node.account(), node.account()
    made = node.client.post(
        f"/account/{ours.account_id}/voiceapp/{_welcome(node, ours)[0]}/prompt",
        headers=ours.headers,
        json={"name": "Only ours"},
    )
    code = made.json()["response"]["record_code"]
    port = _register(node, theirs, tmp_path)
    # Their account has no prompt with our new prompt's number: unknown, asked again; * ends.
    steps = Steps().wait(800).keys(f"{code}#").wait(1500).keys("*")
    call = _record_call(node, theirs, tmp_path, port, steps)
    assert call["outcome"] == "hangup" and call["detail"]["hangup_reason"] == "cancelled"
    assert _prompt(node, ours, made.json()["response"]["prompt_id"])["exists"] is False
