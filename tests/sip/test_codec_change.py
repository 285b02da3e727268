"""A caller whose audio changes codec mid-call (a re-INVITE to another codec, or a second
payload type of its offer) is heard in the whole recording: voicemail and call recording."""

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


@pytest.mark.parametrize("scenario", ["record_codec_reinvite.xml", "record_codec_switch.xml"])
async def test_the_caller_is_heard_after_a_codec_change(
    recorded: tuple[SipServer, RecordedIvr], tmp_path: Path, scenario: str
) -> None:
    server, demo = recorded
    first = tone_pcap(tmp_path / "first.pcap", BEFORE, BEFORE_S, "PCMA")
    # The same stream goes on in the other codec (sequence numbers and timestamps continue).
    later = int(BEFORE_S * 50) + 10
    second = tone_pcap(tmp_path / "second.pcap", AFTER, AFTER_S, "PCMU", first_frame=later)
    await run_sipp(
        server,
        scenario,
        tmp_path,
        values={
            "first_pcap": str(first),
            "first_ms": str(int(BEFORE_S * 1000) + 100),
            "second_pcap": str(second),
            "second_ms": str(int(AFTER_S * 1000) + 100),
        },
    )
    await asyncio.wait_for(demo.done.wait(), 5)
    # The voicemail: both tones, the second one to the end.
    [message] = demo.recordings
    assert message.reason == "key" and message.key == "#"
    pcm = np.frombuffer(message.pcm, dtype="<i2")
    assert windows_with(pcm, (BEFORE,), 0.8) >= 4
    assert windows_with(_after(pcm), (AFTER,), 0.8) >= 8
    # The call recording: the caller's channel likewise.
    await asyncio.wait_for(demo.written.wait(), 10)
    assert demo.results == ["complete"]
    caller = parse_wav(demo.path.read_bytes()).samples[:, 0]
    assert windows_with(caller, (BEFORE,), 0.8) >= 4
    assert windows_with(caller, (AFTER,), 0.8) >= 8
