"""The IVR server against SIPp, a real SIP peer, one scenario per behaviour."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from openivr.sip.call import Dtmf, HungUp
from openivr.sip.server import SipServer
from tests.conftest import free_port, free_port_block

from .conftest import DemoIvr, need_binary, pcm_rms

pytestmark = pytest.mark.peer

SCENARIOS = Path(__file__).parent / "scenarios"
PCAPS = Path("/usr/share/sip-tester")


def pcap(name: str) -> str:
    path = PCAPS / name
    if not path.exists():
        need_binary("a SIPp with its pcaps in /usr/share/sip-tester (package sip-tester)-missing")
    return str(path)


async def run_sipp(
    server: SipServer,
    scenario: str,
    tmp_path: Path,
    *,
    service: str = "100",
    transport: str = "u1",
    values: dict[str, str] | None = None,
) -> None:
    """Run one SIPp call of a scenario against the server; fail with SIPp's errors if it fails."""
    sipp = need_binary("sipp")
    text = (SCENARIOS / scenario).read_text()
    for key, value in (values or {}).items():
        text = text.replace(f"[{key}]", value)
    path = tmp_path / scenario
    path.write_text(text)
    port = server.tcp_port if transport.startswith("t") else server.udp_port
    errors = tmp_path / "errors.log"
    proc = await asyncio.create_subprocess_exec(
        sipp,
        f"127.0.0.1:{port}",
        "-sf",
        str(path),
        "-s",
        service,
        "-m",
        "1",
        "-t",
        transport,
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_port_block()),
        "-timeout",
        "30s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(errors),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    if proc.returncode != 0:
        detail = errors.read_text()[-3000:] if errors.exists() else out.decode()[-3000:]
        pytest.fail(f"sipp {scenario} exited {proc.returncode}:\n{detail}")


async def test_options(ivr: tuple[SipServer, DemoIvr], tmp_path: Path) -> None:
    server, _ = ivr
    await run_sipp(server, "options.xml", tmp_path)


async def test_rfc4733_key_reaches_handler_once_and_we_hang_up(
    ivr: tuple[SipServer, DemoIvr], tmp_path: Path
) -> None:
    server, demo = ivr
    await run_sipp(
        server, "rfc4733_dtmf.xml", tmp_path, values={"dtmf_pcap": pcap("dtmf_2833_1.pcap")}
    )
    await asyncio.wait_for(demo.done.wait(), 5)
    assert [e for e in demo.events if isinstance(e, Dtmf)] == [Dtmf("1", "rfc4733")]
    call = demo.calls[0]
    assert call.hangup_event == HungUp("us", "hangup")
    assert call.stats.packets_sent > 30  # a second of audio went out before the key


async def test_info_dtmf(ivr: tuple[SipServer, DemoIvr], tmp_path: Path) -> None:
    server, demo = ivr
    await run_sipp(server, "info_dtmf.xml", tmp_path)
    await asyncio.wait_for(demo.done.wait(), 5)
    assert demo.keys() == "51"


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_caller_bye_ends_the_call(
    ivr: tuple[SipServer, DemoIvr], tmp_path: Path, transport: str
) -> None:
    server, demo = ivr
    await run_sipp(server, "caller_bye.xml", tmp_path, transport=transport)
    await asyncio.wait_for(demo.done.wait(), 5)
    assert demo.calls[0].hangup_event == HungUp("caller", "bye")
    assert demo.calls[0].transport == ("TCP" if transport == "t1" else "UDP")
    assert demo.records[0].ended_by == "caller"


async def test_cancel_before_answer(ivr: tuple[SipServer, DemoIvr], tmp_path: Path) -> None:
    server, demo = ivr
    demo.answer = False
    await run_sipp(server, "cancel.xml", tmp_path)
    await asyncio.wait_for(demo.done.wait(), 5)
    assert demo.calls[0].hangup_event == HungUp("caller", "cancel")
    assert demo.records[0].status == 487 and demo.records[0].answered_at is None


async def test_unknown_number_gets_404(ivr: tuple[SipServer, DemoIvr], tmp_path: Path) -> None:
    server, demo = ivr
    await run_sipp(server, "not_found.xml", tmp_path, service="555")
    assert [i.route_key for i in demo.invites] == ["555"]
    assert not demo.calls


async def test_reinvite_and_update_keep_the_call(
    ivr: tuple[SipServer, DemoIvr], tmp_path: Path
) -> None:
    server, demo = ivr
    await run_sipp(server, "reinvite.xml", tmp_path)
    await asyncio.wait_for(demo.done.wait(), 5)
    assert demo.calls[0].hangup_event == HungUp("caller", "bye")


async def test_recording_of_streamed_audio(ivr: tuple[SipServer, DemoIvr], tmp_path: Path) -> None:
    server, demo = ivr
    await run_sipp(
        server,
        "record.xml",
        tmp_path,
        values={
            "audio_pcap": pcap("g711a.pcap"),
            "pound_pcap": pcap("dtmf_2833_pound.pcap"),
            "audio_ms": "7500",
        },
    )
    await asyncio.wait_for(demo.done.wait(), 5)
    [recording] = demo.recordings
    assert recording.reason == "key" and recording.key == "#"
    assert demo.calls[0].codec == "PCMA"
    # The pcap holds 236 packets (4.7 s) of audio; lost or late ones become silence.
    assert 4.0 < recording.seconds < 8.0
    samples = np.frombuffer(recording.pcm, dtype="<i2")
    assert pcm_rms(recording.pcm) > 100
    assert np.count_nonzero(samples) > len(samples) // 2
