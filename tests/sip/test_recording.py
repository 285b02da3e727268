"""The recorder on its own: packets placed by their RTP timestamps whatever order they arrive
in, both ways mixed or side by side, and a file cut short by a kill made whole again."""

from __future__ import annotations

import asyncio
import random
import struct
from pathlib import Path

import numpy as np

from openivr.audio import g711
from openivr.audio.wav import parse_wav
from openivr.audio.wavstream import WavStream, repair
from openivr.sip.media import RtpSession
from openivr.sip.recording import Recorder


def _session(codec: g711.Codec = "PCMU") -> RtpSession:
    return RtpSession(codec, 0, 101, ("127.0.0.1", 9), lambda p: None, lambda p: None)


def _frame(value: int, codec: g711.Codec = "PCMU") -> bytes:
    return g711.encode(np.full(160, value, dtype=np.int16), codec)


def _packet(ts: int, payload: bytes, ssrc: int = 7) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, 0, ts, ssrc) + payload


def test_packets_out_of_order_land_where_their_timestamps_say(tmp_path: Path) -> None:
    async def scenario() -> np.ndarray:
        recorder = Recorder()
        session = _session()
        recording = recorder.start(session, "CRtest000001", tmp_path / "a.wav")
        later = list(range(3, 10))
        random.Random(4).shuffle(later)
        for i in [2, 0, 1, *later]:  # the caller's packets, jittered from the first one on
            recording.party.packet(_packet(1000 + 160 * i, _frame(1000 * (i + 1))), "PCMU")
        result = await recorder.finish(recording)
        assert result.status == "complete" and result.failure == ""
        recorder.close()
        return parse_wav((tmp_path / "a.wav").read_bytes()).samples[:, 0]

    pcm = asyncio.run(scenario())
    start = int(np.flatnonzero(pcm)[0])
    levels = [int(np.median(pcm[start + i * 160 : start + (i + 1) * 160])) for i in range(10)]
    expected = [int(g711.decode(_frame(1000 * (i + 1)), "PCMU")[0]) for i in range(10)]
    assert levels == expected


def test_both_ways_are_mixed_or_kept_apart(tmp_path: Path) -> None:
    async def record(channels: int) -> np.ndarray:
        recorder = Recorder()
        session = _session("PCMA")
        path = tmp_path / f"{channels}.wav"
        recording = recorder.start(session, f"CRtest00000{channels}", path, channels=channels)
        for i in range(25):
            recording.party.add(1, 500 + 160 * i, _frame(3000, "PCMA"), "PCMA")
            recording.heard.add(2, 90000 + 160 * i, _frame(-1000, "PCMA"), "PCMA")
        await recorder.finish(recording)
        recorder.close()
        return parse_wav(path.read_bytes()).samples

    mono = asyncio.run(record(1))
    stereo = asyncio.run(record(2))
    party, heard = (int(g711.decode(_frame(v, "PCMA"), "PCMA")[0]) for v in (3000, -1000))
    assert mono.shape[1] == 1 and abs(int(np.median(mono[:, 0])) - (party + heard)) <= 1
    assert stereo.shape[1] == 2
    assert int(np.median(stereo[:, 0])) == party and int(np.median(stereo[:, 1])) == heard


def test_a_file_cut_short_is_repaired_to_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "killed.wav"
    wav = WavStream(path, 2)
    wav.append(bytes(4 * 8000))  # one second of stereo, header fixed up
    wav.fix_sizes()
    wav.append(bytes(4 * 4000 + 3))  # then half a second more and a torn frame, never fixed
    wav.close()
    assert parse_wav(path.read_bytes()).duration == 1.0  # what the header said at the kill
    size, seconds = repair(path)
    assert (size, seconds) == (44 + 4 * 12000, 1.5)
    audio = parse_wav(path.read_bytes())
    assert (audio.channels, audio.duration) == (2, 1.5)
