"""A caller whose audio changes mid-call (a re-INVITE to another codec, a second payload type
of its offer, or a restart of its RTP stream) is heard in the whole recording: voicemail and
call recording."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from openivr.audio.wav import parse_wav
from openivr.sip.call import MediaCall
from openivr.sip.recording import Recorder
from openivr.sip.server import SipServer, SipServerConfig
from tests.calls.tones import tone_pcap, windows_with

from .conftest import DemoIvr
from .test_sipp import run_sipp

pytestmark = pytest.mark.peer

BEFORE, AFTER = 500.0, 1100.0  # the caller's tone in the first codec, then in the second
BEFORE_S, AFTER_S = 1.5, 2.5


class RecordedIvr(DemoIvr):
    """The demo IVR with the caller's call recorded too (stereo: the caller on the left)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.recorder = Recorder(cut_seconds=0.2)
        self.results: list[str] = []
        self.written = asyncio.Event()

    async def handle(self, call: MediaCall) -> None:
        recording = self.recorder.start(call.rtp_session, "CRcodec00001", self.path, channels=2)
        try:
            await super().handle(call)
        finally:
            result = await self.recorder.finish(recording)
            self.results.append(result.status)
            self.written.set()


@pytest.fixture
async def recorded(tmp_path: Path) -> AsyncIterator[tuple[SipServer, RecordedIvr]]:
    demo = RecordedIvr(tmp_path / "call.wav")
    server = SipServer(demo.route, SipServerConfig(host="127.0.0.1", port=0, max_calls=5))
    await server.start()
    cutter = asyncio.create_task(demo.recorder.run())
    try:
        yield server, demo
    finally:
        cutter.cancel()
        await server.stop()
        demo.recorder.close()


def _after(pcm: np.ndarray) -> np.ndarray:
    """The stretch of a recording where only the second tone can be (the last 2 s)."""
    return pcm[-16000:]


async def record_a_change(
    recorded: tuple[SipServer, RecordedIvr], tmp_path: Path, scenario: str, second_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """A PCMA tone then a PCMU one from SIPp: the voicemail's samples and the call recording's
    caller channel."""
    first = tone_pcap(tmp_path / "first.pcap", BEFORE, BEFORE_S, "PCMA")
    # The same stream goes on in the other codec (sequence numbers and timestamps continue).
    later = int(BEFORE_S * 50) + 10
    second = tone_pcap(tmp_path / "second.pcap", AFTER, AFTER_S, "PCMU", first_frame=later)
    return await record_two(recorded, tmp_path, scenario, (first, second), second_type)


async def record_two(
    recorded: tuple[SipServer, RecordedIvr],
    tmp_path: Path,
    scenario: str,
    pcaps: tuple[Path, Path],
    second_type: str,
    seconds: tuple[float, float] = (BEFORE_S, AFTER_S),
) -> tuple[np.ndarray, np.ndarray]:
    """Two pcaps from SIPp one after the other into a recorded message: the voicemail's samples
    and the call recording's caller channel."""
    server, demo = recorded
    await run_sipp(
        server,
        scenario,
        tmp_path,
        values={
            "first_pcap": str(pcaps[0]),
            "first_ms": str(int(seconds[0] * 1000) + 100),
            "second_pcap": str(pcaps[1]),
            "second_ms": str(int(seconds[1] * 1000) + 100),
            "second_type": second_type,
        },
    )
    await asyncio.wait_for(demo.done.wait(), 5)
    [message] = demo.recordings
    assert message.reason == "key" and message.key == "#"
    await asyncio.wait_for(demo.written.wait(), 10)
    assert demo.results == ["complete"]
    caller = parse_wav(demo.path.read_bytes()).samples[:, 0]
    return np.frombuffer(message.pcm, dtype="<i2"), caller


@pytest.mark.parametrize(
    ("scenario", "second_type"),
    [("record_codec_reinvite.xml", ""), ("record_codec_switch.xml", "0")],
)
async def test_the_caller_is_heard_after_a_codec_change(
    recorded: tuple[SipServer, RecordedIvr], tmp_path: Path, scenario: str, second_type: str
) -> None:
    voicemail, caller = await record_a_change(recorded, tmp_path, scenario, second_type)
    # Both tones, the second one to the end: in the voicemail and the call recording alike.
    assert windows_with(voicemail, (BEFORE,), 0.8) >= 4
    assert windows_with(_after(voicemail), (AFTER,), 0.8) >= 8
    assert windows_with(caller, (BEFORE,), 0.8) >= 4
    assert windows_with(caller, (AFTER,), 0.8) >= 8


async def test_a_payload_type_the_caller_did_not_offer_is_not_heard_as_noise(
    recorded: tuple[SipServer, RecordedIvr], tmp_path: Path
) -> None:
    # The offer is PCMA and G.729 (18): PCMU packets (0) are nothing the call agreed on.
    voicemail, caller = await record_a_change(recorded, tmp_path, "record_codec_switch.xml", "18")
    assert windows_with(voicemail, (BEFORE,), 0.8) >= 4
    assert windows_with(voicemail, (AFTER,), 0.05) == 0
    assert windows_with(caller, (BEFORE,), 0.8) >= 4
    assert int(np.abs(caller[-8000:]).max()) < 100  # silence where the PCMU tone was sent


def _tone_runs(pcm: np.ndarray) -> list[tuple[float, int]]:
    """The tones of `pcm` by 200 ms window, in order: (frequency, windows in a row)."""
    runs: list[tuple[float, int]] = []
    for start in range(0, len(pcm) - 1600 + 1, 1600):
        window = pcm[start : start + 1600]
        heard = [f for f in (BEFORE, AFTER) if windows_with(window, (f,), 0.8)]
        if not heard:
            continue
        if runs and runs[-1][0] == heard[0]:
            runs[-1] = (heard[0], runs[-1][1] + 1)
        else:
            runs.append((heard[0], 1))
    return runs


@pytest.mark.parametrize(
    ("first_frame", "second_frame", "ssrc"),
    [
        # The phone restarts its stream: a new SSRC, numbers and timestamps from near 0 again
        # while the old stream was at 2000 (a jump back, longer than any reordering)...
        (2000, 3, 0x0DDBA11),
        # ... or from 5 while the old stream had reached 130 (a jump back "within reach").
        (5, 5, 0x0DDBA11),
        # The same SSRC going back: numbers and timestamps restarted 125 frames (2.5 s) back.
        (100, 50, 0x51C0FFEE),
        # The same stream after a long pause (silence suppression): numbers jump ahead.
        (100, 100 + int(BEFORE_S * 50) + 1000, 0x51C0FFEE),
    ],
    ids=["new-ssrc", "new-ssrc-near", "same-ssrc-back", "forward-jump"],
)
async def test_the_caller_is_heard_after_a_restart_of_its_stream(
    recorded: tuple[SipServer, RecordedIvr],
    tmp_path: Path,
    first_frame: int,
    second_frame: int,
    ssrc: int,
) -> None:
    first = tone_pcap(tmp_path / "first.pcap", BEFORE, BEFORE_S, "PCMA", first_frame=first_frame)
    second = tone_pcap(
        tmp_path / "second.pcap", AFTER, AFTER_S, "PCMA", first_frame=second_frame, ssrc=ssrc
    )
    voicemail, caller = await record_two(
        recorded, tmp_path, "record_codec_switch.xml", (first, second), "0"
    )
    # Both tones in order, each about as long as it was sent: none of the second is dropped
    # as "late", and no long silence goes between them.
    for pcm in (voicemail, caller):
        runs = _tone_runs(pcm)
        assert [f for f, _ in runs] == [BEFORE, AFTER], runs
        assert runs[0][1] >= BEFORE_S * 5 - 2 and runs[1][1] >= AFTER_S * 5 - 2, runs
    assert len(voicemail) <= (BEFORE_S + AFTER_S + 1.0) * 8000
