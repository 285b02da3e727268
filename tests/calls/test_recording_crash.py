"""A real `openivr serve` killed (SIGKILL) during a recorded call keeps what was recorded up to
a moment before: the file was written as the call went, and the next start fixes its header
and lists it as interrupted."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx

from openivr.audio.wav import parse_wav
from tests.calls.conftest import free_udp_port, rtp_range, run_sipp
from tests.calls.tones import tone_pcap, windows_with
from tests.node_process import serving_node

TONE = 440.0


def test_a_killed_node_keeps_the_recording_up_to_a_moment_before(tmp_path: Path) -> None:
    sip_port = free_udp_port()
    flags = ("--sip-port", str(sip_port), "--rtp-ports", rtp_range(), "--node-name", "crashbox")
    pcap = tone_pcap(tmp_path / "tone.pcap", TONE, 12.0, "PCMA")
    with serving_node(tmp_path, *flags) as node, ThreadPoolExecutor(1) as pool:
        headers = {"Authorization": f"Bearer {node.token}"}
        r = httpx.put(
            f"{node.base_url}/account/{node.account_id}",
            json={"call_recording": "inbound"},
            headers=headers,
            timeout=10,
        )
        assert r.status_code == 200, r.text
        box = node.app_of_type("mailbox")["app_id"]
        # The caller talks (a tone) into the mailbox; the node is killed meanwhile.
        talking = pool.submit(
            run_sipp, None, "mailbox_talk_until_bye.xml", tmp_path, box,
            values={"bye_timeout": "8000", "audio_pcap": str(pcap)}, sip_port=sip_port,
            timeout=15,
        )  # fmt: skip
        time.sleep(6.0)
        node.signal_all(signal.SIGKILL)  # the API process and its media process
        assert node.proc.wait(timeout=10) == -signal.SIGKILL
        talking.exception(timeout=40)  # the caller never gets a BYE: its failure is expected
        [wav] = (tmp_path / "data" / "recordings" / node.account_id).glob("*.wav")
        on_disk = wav.stat().st_size
        assert on_disk > 44 + 2 * 8000 * 2, "less than 2 s of the call reached the disk"
        first = node
    # Started again under the same node name, it finds what it left half-written.
    with serving_node(tmp_path, *flags, name="after") as again:
        mine = replace(again, token=first.token, account_id=first.account_id)
        [recording] = mine.get("/call-recording?fields=file_access_details")
        log = again.log.read_text()
    assert recording["status"] == "interrupted", recording
    assert "1 call recordings were being written" in log, log
    # About 5 of the 6 s the call lasted: all but the last second or two.
    assert recording["audio_length"] >= 3.0, recording
    audio = parse_wav(wav.read_bytes())
    assert abs(audio.duration - recording["audio_length"]) < 0.01
    assert recording["file"]["size"] == wav.stat().st_size
    assert windows_with(audio.samples[:, 0], (TONE,), 0.5) >= 10
