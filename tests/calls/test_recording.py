"""Recorded calls with real peers: a SIPp caller is put through to a SIPp phone, each sending its
own tone, and the recording holds both (mixed mono, or one party per channel in stereo); a
callback's two phones behind a SIPp trunk are recorded the same way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from openivr.audio.wav import parse_wav
from tests.calls.conftest import (
    ended,
    free_udp_port,
    rtp_range,
    run_sipp,
    start_target,
    wait_for,
)
from tests.calls.test_callbacks import (  # noqa: F401  (trunk_node: a fixture)
    FIRST,
    SECOND,
    MediaPeer,
    Trunk,
    _callback,
    _number,
    _record,
    trunk_node,
)
from tests.calls.tones import tone_pcap, tone_power, windows_with
from tests.conftest import Account, RunningServer, base_settings, run_server

CALLER_TONE = 440.0  # what the caller's phone sends
PHONE_TONE = 1000.0  # what the phone the call is put through to sends


def recording_node(tmp_path: Path, **extra: Any) -> Iterator[RunningServer]:
    """A node answering SIP on free ports."""
    settings = base_settings(tmp_path, sip_port=free_udp_port(), rtp_ports=rtp_range(), **extra)
    yield from run_server(settings)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RunningServer]:
    yield from recording_node(tmp_path)


def record_all(server: RunningServer, acc: Account) -> None:
    r = server.client.put(
        f"/account/{acc.account_id}", headers=acc.headers, json={"call_recording": "all"}
    )
    assert r.status_code == 200 and r.json()["response"]["call_recording"] == "all", r.text


def recordings(server: RunningServer, acc: Account, fields: str = "") -> list[dict[str, Any]]:
    query = f"?account_id={acc.account_id}" + (f"&fields={fields}" if fields else "")
    r = server.client.get(f"/call-recording{query}", headers=acc.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["response"])


def finished(server: RunningServer, acc: Account) -> dict[str, Any]:
    """The one recording of the account, once it has ended (with its download link)."""

    def done() -> dict[str, Any] | None:
        rows = recordings(server, acc, "file_access_details,voice_call_details")
        return rows[0] if rows and rows[0]["status"] != "recording" else None

    return dict(wait_for(done, timeout=20))


def download(server: RunningServer, recording: dict[str, Any]) -> bytes:
    """The recording's WAV through its signed link, with no token."""
    url = recording["file"]["file_access_details"]["url"]
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav", r.text
    return r.content


def transfer_with_tones(server: RunningServer, acc: Account, tmp_path: Path) -> None:
    """The caller presses 3, is put through to a SIPp phone; both send their tone a while."""
    caller_pcap = tone_pcap(tmp_path / "caller.pcap", CALLER_TONE, 6.0, "PCMA")
    phone_pcap = tone_pcap(tmp_path / "phone.pcap", PHONE_TONE, 6.0, "PCMU")
    target = start_target(
        "callee_plays.xml",
        tmp_path,
        {
            "ruri_user": "sales",
            "from_user": r"\+46701234567",
            "ring_ms": "300",
            "hold_ms": "6000",
            "callee_pt": "0",
            "callee_codec": "PCMU",
            "audio_pcap": str(phone_pcap),
        },
    )
    apps = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()
    menu = next(a for a in apps["response"] if a["name"] == "Main menu")
    r = server.client.put(
        f"/account/{acc.account_id}/voiceapp/{menu['app_id']}",
        headers=acc.headers,
        json={
            "menu": {
                "digit_3": {
                    "action": "call",
                    "to": "sip",
                    "id": f"sip:sales@127.0.0.1:{target.port}",
                }
            }
        },
    )
    assert r.status_code == 200, r.text
    run_sipp(
        server,
        "transfer_talk.xml",
        tmp_path,
        menu["app_id"],
        values={
            "key": "3",
            "wait_ms": "800",
            "ring_wait_ms": "1500",
            "bye_timeout": "20000",
            "audio_pcap": str(caller_pcap),
        },
    )
    target.finish()


def test_a_recorded_transfer_holds_both_parties(node: RunningServer, tmp_path: Path) -> None:
    acc = node.account()
    record_all(node, acc)
    transfer_with_tones(node, acc, tmp_path)
    recording = finished(node, acc)
    assert recording["status"] == "complete", recording
    assert recording["type"] == "voice_call" and recording["account_id"] == acc.account_id
    details = recording["voice_call_details"]
    assert details["from"] == "+46701234567" and details["call_length"] >= 5
    audio = parse_wav(download(node, recording))
    assert (audio.sample_rate, audio.channels) == (8000, 1)
    assert recording["file"]["size"] == 44 + 2 * len(audio.samples)
    # Both parties at once, in the one mixed channel, for at least a second.
    assert windows_with(audio.samples[:, 0], (CALLER_TONE, PHONE_TONE)) >= 5
    # The call log names the recording (once the call's end is written, within a moment).
    [call] = wait_for(
        lambda: ended(node.client.get(f"/account/{acc.account_id}/call", headers=acc.headers))
    )
    assert call["detail"]["recording_id"] == recording["call_recording_id"]


def test_stereo_puts_each_party_on_its_own_channel(tmp_path: Path) -> None:
    for server in recording_node(tmp_path, recording_channels="stereo"):
        acc = server.account()
        record_all(server, acc)
        transfer_with_tones(server, acc, tmp_path)
        recording = finished(server, acc)
        assert recording["status"] == "complete" and recording["channels"] == 2
        audio = parse_wav(download(server, recording))
        assert audio.channels == 2
        left, right = audio.samples[:, 0], audio.samples[:, 1]
        assert windows_with(left, (CALLER_TONE,), 0.8) >= 5
        assert windows_with(right, (PHONE_TONE,), 0.8) >= 5
        # Before the phone answered the caller heard the menu and "please wait" (paced by the
        # media clock, not relayed): those are in the recording too.
        first_phone = next(
            start
            for start in range(0, len(right) - 1600, 1600)
            if tone_power(right[start : start + 1600].astype(np.float64), PHONE_TONE) > 0.5
        )
        before = right[:first_phone].astype(np.float64)
        loud = [
            start
            for start in range(0, len(before) - 1600, 1600)
            if np.sqrt(np.mean(before[start : start + 1600] ** 2)) > 300
        ]
        assert len(loud) >= 3, "the prompts the caller heard are not in the recording"
        # Neither channel carries the other party (what the caller hears also has the menu's
        # words, which have some of every frequency: looked at where the phone is heard).
        assert windows_with(left, (PHONE_TONE,), 0.05) == 0
        for start in range(0, len(right) - 1600, 1600):
            window = right[start : start + 1600].astype(np.float64)
            if tone_power(window, PHONE_TONE) > 0.5:
                assert tone_power(window, CALLER_TONE) < 0.05


def test_selected_records_the_numbers_marked_so(node: RunningServer, tmp_path: Path) -> None:
    acc = node.account()
    base = f"/account/{acc.account_id}"
    r = node.client.put(base, headers=acc.headers, json={"call_recording": "selected"})
    assert r.status_code == 200, r.text
    apps = node.client.get(f"{base}/voiceapp", headers=acc.headers).json()["response"]
    menu = next(a["app_id"] for a in apps if a["name"] == "Main menu")
    for phnum, record in (("+46812345670", "yes"), ("+46812345671", "no")):
        r = node.client.post(
            f"{base}/phonenumbersubscription",
            headers=acc.headers,
            json={
                "phnum": phnum,
                "connect_to_type": "app",
                "connect_to": menu,
                "record_calls": record,
            },
        )
        assert r.status_code == 200, r.text
    for dialled in ("+46812345671", "+46812345670"):
        run_sipp(node, "caller_bye.xml", tmp_path, dialled, values={"wait_ms": "1500"})
    [recording] = [finished(node, acc)]
    assert recording["voice_call_details"]["to"].endswith("46812345670"), recording
    assert len(recordings(node, acc)) == 1


def test_outbound_records_a_callback_both_ways(
    trunk_node: tuple[RunningServer, int],  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    server, trunk_port = trunk_node
    acc = server.account()
    _number(server, acc)
    r = server.client.put(
        f"/account/{acc.account_id}", headers=acc.headers, json={"call_recording": "outbound"}
    )
    assert r.status_code == 200, r.text
    first, second = MediaPeer(700.0), MediaPeer(1300.0)
    trunk = Trunk(tmp_path, trunk_port, [(first.port, "talk"), (second.port, "hang")])
    try:
        session = _callback(server, acc, {"app_id": "test", "call1": FIRST, "call2": SECOND})
        trunk.finish()
    finally:
        first.stop(), second.stop()
    call = _record(server, acc, session)
    recording = finished(server, acc)
    assert recording["status"] == "complete", recording
    assert recording["call_id"] == session and recording["user_id"] == acc.user_id
    assert call["detail"]["recording_id"] == recording["call_recording_id"]
    assert recording["voice_call_details"]["direction"] == "outbound"
    audio = parse_wav(download(server, recording))
    # The first party (recorded on their leg) and the second, put through to them.
    assert windows_with(audio.samples[:, 0], (700.0, 1300.0), 0.1) >= 5


def test_a_recording_deleted_during_its_call_stays_deleted(
    node: RunningServer, tmp_path: Path
) -> None:
    acc = node.account()
    record_all(node, acc)
    apps = node.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()
    menu = next(a["app_id"] for a in apps["response"] if a["name"] == "Main menu")
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(
            run_sipp, node, "caller_bye.xml", tmp_path, menu, values={"wait_ms": "5000"}
        )
        # Listed while the call goes on.
        live = wait_for(lambda: recordings(node, acc), timeout=10)[0]
        assert live["status"] == "recording", live
        r = node.client.delete(f"/call-recording/{live['call_recording_id']}", headers=acc.headers)
        assert r.status_code == 200, r.text
        call.result(timeout=30)
    calls = wait_for(
        lambda: [
            c
            for c in node.client.get(f"/account/{acc.account_id}/call", headers=acc.headers).json()[
                "response"
            ]
            if c["end_time"]
        ]
    )
    assert calls[0]["detail"]["recording_id"] == live["call_recording_id"]
    # Its end is stored within a moment of the call's end: the row must not come back then.
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        assert recordings(node, acc) == []
        time.sleep(0.2)
    assert not list(node.settings.recordings_dir.glob("*/*.wav"))
