"""Recording never costs the call: a store that refuses the file, or a disk that fills up during
the call, loses the recording (logged, and its record says why), while the caller's message is
recorded, stored and the call ends as it would have."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openivr.audio.wav import parse_wav
from tests.calls.conftest import free_udp_port, rtp_range, run_sipp, wait_for
from tests.calls.test_recording import record_all, recordings
from tests.calls.tones import tone_pcap
from tests.conftest import RunningServer, base_settings, run_server


def _node(tmp_path: Path, store: Path) -> Iterator[RunningServer]:
    settings = base_settings(
        tmp_path, sip_port=free_udp_port(), rtp_ports=rtp_range(), recording_dir=str(store)
    )
    yield from run_server(settings)


def _leave_a_message(server: RunningServer, tmp_path: Path) -> tuple[dict[str, Any], Any]:
    """A recorded caller speaks into the mailbox (a tone, 15 s from the start of the greeting);
    their recording and their message."""
    acc = server.account()
    record_all(server, acc)
    apps = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()
    box = next(a["app_id"] for a in apps["response"] if a["app_type"] == "mailbox")
    pcap = tone_pcap(tmp_path / "tone.pcap", 440.0, 15.0, "PCMA")
    run_sipp(
        server,
        "mailbox_talk_until_bye.xml",
        tmp_path,
        box,
        values={"bye_timeout": "40000", "audio_pcap": str(pcap)},
        timeout=60,
    )

    def ended() -> dict[str, Any] | None:
        rows = recordings(server, acc)
        return rows[0] if rows and rows[0]["status"] != "recording" else None

    recording = wait_for(ended, timeout=20)
    messages = server.client.get(
        f"/account/{acc.account_id}/voiceapp/{box}/voicemail", headers=acc.headers
    ).json()["response"]
    return recording, messages


def test_a_store_that_refuses_the_file_loses_only_the_recording(tmp_path: Path) -> None:
    blocked = tmp_path / "recordings"
    blocked.write_text("a file where the recordings dir should be")  # even root cannot mkdir
    for server in _node(tmp_path, blocked):
        recording, messages = _leave_a_message(server, tmp_path)
        assert recording["status"] == "failed", recording
        assert "cannot create" in recording["failure"], recording
        assert recording["file"]["size"] == 0
        # The call itself went on: the caller's message was recorded and kept.
        [message] = messages
        assert message["duration"] >= 5.0, message


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB filesystem of its own (tmpfs): about 4 s of a recording fill it."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_disk_that_fills_up_during_the_call_loses_only_the_recording(
    tmp_path: Path, small_disk: Path
) -> None:
    for server in _node(tmp_path, small_disk):
        recording, messages = _leave_a_message(server, tmp_path)
        assert recording["status"] == "failed", recording
        assert "No space left on device" in recording["failure"], recording
        # What fitted is kept as a WAV whose header says what it holds.
        [wav] = small_disk.glob("*/*.wav")
        audio = parse_wav(wav.read_bytes())
        assert 1.0 <= audio.duration < 4.5
        assert recording["file"]["size"] == wav.stat().st_size
        [message] = messages
        assert message["duration"] >= 5.0, message
