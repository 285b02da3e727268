"""Prompts: catalogue, custom prompts, WAV uploads, signed audio links."""

from __future__ import annotations

import io
import struct
import wave
from typing import Any

import numpy as np

from tests.conftest import Account, RunningServer


def _wav(rate: int = 16000, seconds: float = 1.0, channels: int = 1, width: int = 2) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 2:
            data = (tone * 32767).astype("<i2")
        else:
            data = ((tone + 1) * 127).astype(np.uint8)
        w.writeframes(np.repeat(data[:, None], channels, axis=1).tobytes())
    return buf.getvalue()


def _float_wav() -> bytes:
    samples = np.zeros(800, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(samples))
        + samples
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _prompts(
    server: RunningServer, acc: Account, app_name: str
) -> tuple[str, list[dict[str, Any]]]:
    apps = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()[
        "response"
    ]
    app_id = next(a["app_id"] for a in apps if a["name"] == app_name)
    r = server.client.get(
        f"/account/{acc.account_id}/voiceapp/{app_id}/prompt", headers=acc.headers
    )
    return app_id, r.json()["response"]


def test_standard_prompts_per_app_type(server: RunningServer) -> None:
    acc = server.account()
    expected = {
        "Main menu": {"welcome", "menu", "please_wait"},
        "Voice Mail": {"greeting", "goodbye"},
        "System Prompt": {
            "invalid_option",
            "no_input",
            "unavailable",
            "goodbye",
            "closed",
            "all_busy",
            "no_message",
        },
    }
    for app, keys in expected.items():
        _app_id, prompts = _prompts(server, acc, app)
        assert {p["key"] for p in prompts} == keys
        assert all(p["type"] == "standard" for p in prompts)
        for p in prompts:
            r = server.client.delete(f"/prompt/{p['prompt_id']}", headers=acc.headers)
            assert r.status_code == 409


def test_upload_a_wav_and_play_it_back_without_a_token(server: RunningServer) -> None:
    acc = server.account()
    app_id, prompts = _prompts(server, acc, "Main menu")
    welcome = next(p for p in prompts if p["key"] == "welcome")
    wav = _wav(rate=44100, seconds=2.0, channels=2)
    r = server.client.post(
        f"/prompt/{welcome['prompt_id']}/message",
        headers=acc.headers,
        files={"file": ("hello.wav", wav, "audio/wav")},
    )
    assert r.status_code == 200, r.text
    p = r.json()["response"]
    assert p["exists"] is True and p["file_name"] == "hello.wav"
    assert 1.8 < p["audio_length"] <= 2.01
    assert p["size"] == round(len(wav) / 1024, 1)
    got = server.client.get(p["message_url"])
    assert got.status_code == 200 and got.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(got.content)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    ranged = server.client.get(p["message_url"], headers={"Range": "bytes=0-43"})
    assert ranged.status_code == 206 and len(ranged.content) == 44
    tampered = p["message_url"].replace("sig=", "sig=x")
    assert server.client.get(tampered).status_code == 403
    msg = server.client.get(
        f"/account/{acc.account_id}/voiceapp/{app_id}/prompt/{welcome['prompt_id']}?fields=message",
        headers=acc.headers,
    ).json()["response"]
    # The hosted API's ?fields=message adds the message details to the whole prompt.
    assert msg["exists"] is True and msg["message_url"]
    assert (msg["prompt_id"], msg["type"], msg["name"], msg["app_id"]) == (
        welcome["prompt_id"],
        "standard",
        welcome["name"],
        app_id,
    )
    # Back to the default.
    r = server.client.delete(f"/prompt/{welcome['prompt_id']}/message", headers=acc.headers)
    assert r.status_code == 200 and r.json()["response"]["exists"] is False
    assert "default recording" in r.json()["response"]["file_details"]
    assert server.client.get(p["message_url"]).status_code == 404


def test_bad_uploads_are_refused_and_the_old_message_stays(server: RunningServer) -> None:
    acc = server.account()
    _app_id, prompts = _prompts(server, acc, "Voice Mail")
    pid = next(p for p in prompts if p["key"] == "greeting")["prompt_id"]
    good = server.client.post(
        f"/prompt/{pid}/message",
        headers=acc.headers,
        files={"file": ("g.wav", _wav(), "audio/wav")},
    )
    assert good.status_code == 200
    before = good.json()["response"]
    bad_cases = {
        "not a wav": (b"hello, this is not audio at all" * 10, 415),
        "8-bit": (_wav(width=1), 415),
        "float": (_float_wav(), 415),
        "truncated": (_wav()[:-1000][:200], 400),
        "empty": (b"", 400),
        "too big": (b"RIFF" + b"\0" * (10 * 1024 * 1024 + 10), 413),
    }
    for name, (data, status) in bad_cases.items():
        r = server.client.post(
            f"/prompt/{pid}/message",
            headers=acc.headers,
            files={"file": ("x.wav", data, "audio/wav")},
        )
        assert r.status_code == status, (name, r.status_code, r.text)
        assert r.json()["status"] == "failed" and r.json()["response"]["detail"].startswith("file:")
    r = server.client.post(f"/prompt/{pid}/message", headers=acc.headers, data={"nofile": "1"})
    assert r.status_code == 415
    r = server.client.post(
        f"/prompt/{pid}/message", headers=acc.headers, files={"other": ("x.wav", b"1")}
    )
    assert r.status_code == 400 and "'file'" in r.json()["response"]["detail"]
    after = server.client.get(f"/prompt/{pid}", headers=acc.headers).json()["response"]
    assert after["record_id"] == before["record_id"] and after["exists"] is True
    assert server.client.get(after["message_url"]).status_code == 200


def test_custom_prompts_crud_and_references(server: RunningServer) -> None:
    acc = server.account()
    app_id, _ = _prompts(server, acc, "Main menu")
    base = f"/account/{acc.account_id}/voiceapp/{app_id}/prompt"
    r = server.client.post(base, headers=acc.headers, json={"name": "Opening hours"})
    assert r.status_code == 200
    pid = r.json()["response"]["prompt_id"]
    r = server.client.post(base + "?name=Deal%20of%20the%20week", headers=acc.headers)
    assert r.status_code == 200 and r.json()["response"]["type"] == "custom"
    r = server.client.put(f"/prompt/{pid}", headers=acc.headers, json={"name": "Hours"})
    assert r.json()["response"]["name"] == "Hours"
    server.client.put(
        f"/account/{acc.account_id}/voiceapp/{app_id}",
        headers=acc.headers,
        json={"menu": {"digit_4": {"action": "play", "to": "prompt", "id": pid}}},
    )
    assert server.client.delete(f"{base}/{pid}", headers=acc.headers).status_code == 409
    assert server.client.delete(f"{base}/{pid}?force=true", headers=acc.headers).status_code == 200
    assert server.client.get(f"/prompt/{pid}", headers=acc.headers).status_code == 404
    other = server.account()
    _a, other_prompts = _prompts(server, other, "Main menu")
    assert (
        server.client.get(
            f"/prompt/{other_prompts[0]['prompt_id']}", headers=acc.headers
        ).status_code
        == 404
    )
