"""A real softphone (baresip) leaves a voicemail in a running OpenIVR."""

from __future__ import annotations

import io
import subprocess
import wave
from pathlib import Path

import numpy as np

from openivr.audio import tones
from tests.calls.conftest import ended, wait_for
from tests.conftest import RunningServer, require_binary


def _dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])


def test_baresip_leaves_a_message(phone_server: RunningServer, tmp_path: Path) -> None:
    baresip = require_binary("baresip")
    acc = phone_server.account()
    apps = phone_server.client.get(
        f"/account/{acc.account_id}/voiceapp", headers=acc.headers
    ).json()["response"]
    box = next(a for a in apps if a["app_type"] == "mailbox")
    url = f"/account/{acc.account_id}/voiceapp/{box['app_id']}"
    phone_server.client.put(
        url, headers=acc.headers, json={"greeting_prompt": "no", "goodbye_prompt": "no"}
    )
    # The caller says "aaah" at 600 Hz for 3 s, then stays silent: 5 s of silence end the message.
    speech = np.concatenate([tones.beep(600.0, 3000, -12.0), tones.silence(9000)])
    with wave.open(str(tmp_path / "caller.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(speech.astype("<i2").tobytes())
    (tmp_path / "accounts").write_text("<sip:+46701234567@127.0.0.1>;regint=0\n")
    (tmp_path / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                "sip_listen 127.0.0.1:0",
                "module_path /usr/lib/baresip/modules",
                "module g711.so",
                "module aufile.so",
                "module_app account.so",
                "module_app menu.so",
                f"audio_source aufile,{tmp_path / 'caller.wav'}",
                "audio_player aufile,/dev/null",
                "audio_alert aufile,/dev/null",
                "",
            ]
        )
    )
    proc = subprocess.Popen(
        [
            baresip,
            "-4",
            "-n",
            "127.0.0.1",
            "-f",
            str(tmp_path),
            "-t",
            "25",
            "-e",
            f"/dial sip:{box['app_id']}@127.0.0.1:{phone_server.settings.sip_port}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        messages = wait_for(
            lambda: phone_server.client.get(f"{url}/voicemail", headers=acc.headers).json()[
                "response"
            ],
            timeout=25,
        )
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode(errors="replace")
    msg = messages[0]
    assert 2.5 <= msg["duration"] <= 4.5, out[-2000:]
    with wave.open(io.BytesIO(phone_server.client.get(msg["audio_url"]).content)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert abs(_dominant_hz(samples, 8000) - 600) < 10
    calls = wait_for(
        lambda: ended(
            phone_server.client.get(f"/account/{acc.account_id}/call", headers=acc.headers)
        )
    )
    assert calls[0]["outcome"] == "voicemail" and calls[0]["ended_by"] == "us"
