"""Prompts: catalogue, custom prompts, WAV uploads, signed audio links."""

from __future__ import annotations

import io
import struct
import wave
from typing import Any

import numpy as np

from openivr.audio import g711
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


def _encoded_wav(tag: int, bits: int, samples: bytes, rate: int = 8000) -> bytes:
    block = max(bits // 8, 1)
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * block, block, bits)
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
            "record_code",
            "record_review",
            "record_saved",
            "record_unknown",
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


def _tone(rate: int = 8000) -> Any:
    return 0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)


ENCODED = {
    "µ-law": lambda: _encoded_wav(
        7, 8, g711.ulaw_encode((_tone() * 32767).astype(np.int16)).tobytes()
    ),
    "A-law": lambda: _encoded_wav(
        6, 8, g711.alaw_encode((_tone() * 32767).astype(np.int16)).tobytes()
    ),
    "8-bit": lambda: _wav(rate=8000, width=1),
    "24-bit": lambda: _encoded_wav(
        1,
        24,
        b"".join(int(v).to_bytes(4, "little", signed=True)[:3] for v in _tone(16000) * 8388607),
        16000,
    ),
    "32-bit int": lambda: _encoded_wav(1, 32, (_tone() * 2147483647).astype("<i4").tobytes()),
    "32-bit float": lambda: _encoded_wav(3, 32, _tone(44100).astype("<f4").tobytes(), 44100),
}


def test_wav_encodings_of_phones_and_editors_are_converted(any_server: RunningServer) -> None:
    acc = any_server.account()
    _app_id, prompts = _prompts(any_server, acc, "Voice Mail")
    pid = next(p for p in prompts if p["key"] == "greeting")["prompt_id"]
    for name, make in ENCODED.items():
        r = any_server.client.post(
            f"/prompt/{pid}/message",
            headers=acc.headers,
            files={"file": (f"{name}.wav", make(), "audio/wav")},
        )
        assert r.status_code == 200, (name, r.text)
        p = r.json()["response"]
        assert p["exists"] is True and 0.9 < p["audio_length"] <= 1.01, (name, p)
        played = any_server.client.get(p["message_url"])
        with wave.open(io.BytesIO(played.content)) as w:
            assert (w.getframerate(), w.getsampwidth()) == (8000, 2)
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
        # The tone, levelled: loud, and 440 Hz is where its energy is.
        assert np.sqrt(np.mean(pcm**2)) > 1000, name
        spectrum = np.abs(np.fft.rfft(pcm))
        assert abs(np.argmax(spectrum) * 8000 / len(pcm) - 440) < 5, name


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
        "GSM": (_encoded_wav(0x31, 0, b"\0" * 650), 415),
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


def test_every_prompt_has_a_record_code_unique_in_its_account_and_stable(
    any_server: RunningServer,
) -> None:
    acc = any_server.account()
    views: list[dict[str, Any]] = []
    for app in ("Main menu", "Voice Mail", "System Prompt"):
        views += _prompts(any_server, acc, app)[1]
    codes = [p["record_code"] for p in views]
    assert all(isinstance(c, int) and c > 0 for c in codes)
    assert len(set(codes)) == len(codes)
    app_id, _ = _prompts(any_server, acc, "Main menu")
    base = f"/account/{acc.account_id}/voiceapp/{app_id}/prompt"
    made = any_server.client.post(base, headers=acc.headers, json={"name": "Hours"})
    assert made.status_code == 200, made.text
    hours = made.json()["response"]
    assert hours["record_code"] == max(codes) + 1
    # Renamed, given a message, sent back as read: the code stays; changing it is refused.
    one = f"{base}/{hours['prompt_id']}"
    r = any_server.client.put(one, headers=acc.headers, json={**hours, "name": "Opening hours"})
    assert r.status_code == 200 and r.json()["response"]["record_code"] == hours["record_code"]
    r = any_server.client.put(
        one, headers=acc.headers, json={"record_code": hours["record_code"] + 1}
    )
    assert r.status_code == 400 and "record_code" in r.text
    # A deleted prompt's code is never handed out again.
    assert any_server.client.delete(one, headers=acc.headers).status_code == 200
    again = any_server.client.post(base, headers=acc.headers, json={"name": "Hours"})
    assert again.json()["response"]["record_code"] == hours["record_code"] + 1
    # Another account numbers its prompts on its own.
    other = any_server.account()
    other_codes = [p["record_code"] for p in _prompts(any_server, other, "Main menu")[1]]
    assert set(other_codes) <= set(codes)
