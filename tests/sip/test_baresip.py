"""The IVR server called by baresip, a real softphone: it hears the prompt, we hear it."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from openivr.audio import tones
from openivr.sip.call import HungUp, PlaybackFinished
from openivr.sip.server import SipServer

from .conftest import DemoIvr, need_binary

pytestmark = pytest.mark.peer


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(samples.astype("<i2").tobytes())


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])


async def wait_until(predicate: object, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def test_baresip_hears_the_prompt_and_is_recorded(
    ivr: tuple[SipServer, DemoIvr], tmp_path: Path
) -> None:
    baresip = need_binary("baresip")
    server, demo = ivr
    demo.tone_seconds = 2.0
    # The caller "speaks" a steady 600 Hz tone; the IVR plays 440 Hz.
    write_wav(tmp_path / "caller.wav", tones.beep(600.0, 20000, -12.0))
    (tmp_path / "accounts").write_text("<sip:bob@127.0.0.1>;regint=0\n")
    (tmp_path / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                "sip_listen 127.0.0.1:0",
                "module_path /usr/lib/baresip/modules",
                "module g711.so",
                "module aufile.so",
                "module sndfile.so",
                f"snd_path {tmp_path}",
                "module_app account.so",
                "module_app menu.so",
                f"audio_source aufile,{tmp_path / 'caller.wav'}",
                "audio_alert aufile,/dev/null",
                "",
            ]
        )
    )
    proc = await asyncio.create_subprocess_exec(
        baresip,
        "-4",
        "-n",
        "127.0.0.1",
        "-f",
        str(tmp_path),
        "-t",
        "30",
        "-e",
        f"/dial sip:100@127.0.0.1:{server.udp_port}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        await wait_until(lambda: demo.calls and demo.calls[0].state == "answered")
        call = demo.calls[0]
        assert call.caller == "bob" and call.dialed == "100"
        call.start_recording(max_seconds=1.0, max_silence=None)
        await wait_until(lambda: PlaybackFinished(interrupted=False) in demo.events)
        await wait_until(lambda: demo.recordings)
        await call.hangup()
        await wait_until(
            lambda: not server.transactions.requests_in_flight
        )  # baresip answered our BYE
    finally:
        if proc.returncode is None:
            proc.terminate()
        out, _ = await proc.communicate()
    assert demo.calls[0].hangup_event == HungUp("us", "hangup")
    recording = demo.recordings[0]
    assert recording.reason == "max_length" and recording.seconds == 1.0
    heard_by_us = np.frombuffer(recording.pcm, dtype="<i2")
    assert abs(dominant_hz(heard_by_us, 8000) - 600) < 10
    [dump] = tmp_path.glob("dump-*-dec.wav")  # what baresip decoded from our RTP
    with wave.open(str(dump)) as heard:
        rate = heard.getframerate()
        samples = np.frombuffer(heard.readframes(heard.getnframes()), dtype="<i2")
    loud = np.abs(samples) > 1000
    assert loud.sum() / rate > 1.5, out.decode()[-2000:]  # most of the 2 s prompt arrived
    assert abs(dominant_hz(samples, rate) - 440) < 10
    assert call.stats.packets_received > 25
