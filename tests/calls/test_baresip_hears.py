"""What a real softphone (baresip) hears: the mailbox says so when no message was recorded."""

from __future__ import annotations

import io
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from openivr.audio import tones
from tests.calls.conftest import ended, wait_for
from tests.conftest import Account, RunningServer, require_binary


def _wav(samples: np.ndarray, path: Path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(samples.astype("<i2").tobytes())


def _read(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def call_and_listen(
    node: RunningServer, target: str, says: np.ndarray, tmp: Path, ended: Callable[[], Any]
) -> np.ndarray:
    """Call `target` with baresip saying `says`; return what it heard (8 kHz) once `ended()`
    says the call is over."""
    baresip = require_binary("baresip")
    _wav(says, tmp / "says.wav")
    dumps = tmp / "heard"
    dumps.mkdir()
    (tmp / "accounts").write_text("<sip:+46701234567@127.0.0.1>;regint=0\n")
    (tmp / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                "sip_listen 127.0.0.1:0",
                "module_path /usr/lib/baresip/modules",
                "module g711.so",
                "module aufile.so",
                "module sndfile.so",  # writes what the phone hears to dump-*-dec.wav
                f"snd_path {dumps}",
                "module_app account.so",
                "module_app menu.so",
                f"audio_source aufile,{tmp / 'says.wav'}",
                "audio_player aufile,/dev/null",
                "audio_alert aufile,/dev/null",
                "",
            ]
        )
    )
    proc = subprocess.Popen(
        [
            *(baresip, "-4", "-n", "127.0.0.1", "-f", str(tmp), "-t", "30"),
            *("-e", f"/dial sip:{target}@127.0.0.1:{node.settings.sip_port}"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    try:
        wait_for(ended, timeout=40)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode(errors="replace")
    heard = list(dumps.glob("dump-*-dec.wav"))
    assert len(heard) == 1, out[-2000:]
    return _read(heard[0].read_bytes())


def _prompt_audio(node: RunningServer, acc: Account, app_type: str, key: str) -> np.ndarray:
    apps = node.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()
    app = next(a for a in apps["response"] if a["app_type"] == app_type)
    prompts = node.client.get(
        f"/account/{acc.account_id}/voiceapp/{app['app_id']}/prompt", headers=acc.headers
    ).json()["response"]
    prompt = next(p for p in prompts if p["key"] == key)
    return _read(httpx.get(prompt["message_url"], timeout=30).content)


def _likeness(heard: np.ndarray, reference: np.ndarray) -> float:
    """The best normalised correlation of `reference`'s first 2 s anywhere in `heard` (1.0:
    identical; the last frames before our BYE may not reach the phone)."""
    reference = reference[: 2 * 8000]
    ref = reference - reference.mean()
    n = len(ref)
    if len(heard) < n:
        heard = np.concatenate([heard, np.zeros(n - len(heard))])
    size = 1 << int(np.ceil(np.log2(len(heard) + n)))
    corr = np.fft.irfft(np.fft.rfft(heard, size) * np.conj(np.fft.rfft(ref, size)), size)
    window = np.convolve(heard**2, np.ones(n), "valid")
    best = 0.0
    for lag in range(len(window)):
        energy = window[lag]
        if energy > 0:
            best = max(best, corr[lag] / np.sqrt(energy * np.dot(ref, ref)))
    return float(best)


def test_a_silent_caller_hears_no_message_was_recorded_not_thank_you(
    phone_server: RunningServer, tmp_path: Path
) -> None:
    node = phone_server
    acc = node.account()
    apps: list[dict[str, Any]] = node.client.get(
        f"/account/{acc.account_id}/voiceapp", headers=acc.headers
    ).json()["response"]
    box = next(a for a in apps if a["app_type"] == "mailbox")
    node.client.put(
        f"/account/{acc.account_id}/voiceapp/{box['app_id']}",
        headers=acc.headers,
        json={"greeting_prompt": "no", "goodbye_prompt": "yes"},
    )
    calls = f"/account/{acc.account_id}/call"

    def finished() -> Any:
        return ended(node.client.get(calls, headers=acc.headers))

    heard = call_and_listen(node, box["app_id"], tones.silence(20 * 8000), tmp_path, finished)
    no_message = _prompt_audio(node, acc, "sysprompt", "no_message")
    thank_you = _prompt_audio(node, acc, "mailbox", "goodbye")
    assert _likeness(heard, no_message) > 0.8
    assert _likeness(heard, thank_you) < 0.5
    [call] = finished()
    assert call["outcome"] == "hangup" and call["detail"]["hangup_reason"] == "no message left"
    assert (
        node.client.get(
            f"/account/{acc.account_id}/voiceapp/{box['app_id']}/voicemail", headers=acc.headers
        ).json()["response"]
        == []
    )
