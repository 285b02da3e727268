"""The API load of the talking-caller bench: what users and scripts ask a node while it carries calls.

Run by `ivr_calls.py --api-mix` (as a separate process on the callers' core), one client per
kind, each sending its request again as soon as the last one was answered, for `seconds`:

- token_wrong: a password grant with a wrong password, each for another user name and from
  another address (`X-Forwarded-For` through the node's trusted balancer, `trusted: true`):
  credential stuffing spread out so that no address and no name reaches the guessing guard's
  limit, so every request costs a full Argon2 verification (a name nobody has is checked
  against a stand-in hash); without `trusted`, one name from 127.0.0.1, which the guard
  refuses (429) after a few failures and Argon2 is barely exercised;
- token_right: a password grant with the right one (the real user, from its office address);
- upload: a 9.7 MB 44.1 kHz stereo WAV as a prompt's custom message (parsed, resampled,
  levelled);
- simulate_wav: a simulated call through the menu, answered as audio (`?format=wav`);
- tts: text to speech with a new text each time (never cached);
- call_list: the newest 1,000 call records;
- voicemail: a voicemail message's WAV.

Prints one JSON line: per kind, requests answered, statuses and p50/max latency (ms).
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
import wave
from typing import Any

import httpx
import numpy as np

BASIC = ("sonetel-api", "sonetel-api")


def big_wav(seconds: float = 55.0) -> bytes:
    """A 44.1 kHz stereo WAV just under the 10 MB upload limit (a tone with some noise)."""
    rate = 44100
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(1)
    mono = 8000 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 300, t.size)
    stereo = np.repeat(mono.astype("<i2")[:, None], 2, axis=1)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(stereo.tobytes())
    return buf.getvalue()


async def main(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run every kind's client until the time is up; per-kind results."""
    url, acc, seconds = cfg["url"], cfg["account_id"], float(cfg["seconds"])
    headers = {"Authorization": f"Bearer {cfg['token']}"}
    upload = big_wav()
    results: dict[str, dict[str, Any]] = {}
    stop_at = time.monotonic() + seconds
    counter = [0]

    trusted = bool(cfg.get("trusted"))

    def token_wrong() -> dict[str, Any]:
        counter[0] += 1
        n = counter[0]
        user = f"stuffed-{n}@example.net" if trusted else cfg["email"]
        data = {"grant_type": "password", "username": user, "password": "wrong-pass"}
        request = {"method": "POST", "url": "/oauth/token", "data": data, "auth": BASIC}
        if trusted:  # one guess per address: 10.x.y.z, a new one each time
            address = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
            request["headers"] = {"X-Forwarded-For": address}
        return request

    def token_right() -> dict[str, Any]:
        data = {"grant_type": "password", "username": cfg["email"], "password": cfg["password"]}
        request = {"method": "POST", "url": "/oauth/token", "data": data, "auth": BASIC}
        if trusted:
            request["headers"] = {"X-Forwarded-For": "192.0.2.10"}
        return request

    def upload_wav() -> dict[str, Any]:
        return {
            "method": "POST",
            "url": f"/prompt/{cfg['upload_prompt']}/message",
            "files": {"file": ("big.wav", upload, "audio/wav")},
            "headers": headers,
        }

    def simulate() -> dict[str, Any]:
        return {
            "method": "POST",
            "url": f"/account/{acc}/voiceapp/{cfg['simulate_app']}/simulate?format=wav",
            "json": {"caller": "+46701234567", "keys": "1"},
            "headers": headers,
        }

    def tts() -> dict[str, Any]:
        counter[0] += 1
        text = f"Your reference number is {counter[0]} and your call matters to us"
        return {
            "method": "POST",
            "url": "/tts/prompt/convert",
            "json": {"text": text, "language": "en_US"},
            "headers": headers,
        }

    def call_list() -> dict[str, Any]:
        return {"method": "GET", "url": f"/account/{acc}/call?limit=1000", "headers": headers}

    def voicemail() -> dict[str, Any]:
        counter[0] += 1
        path = cfg["voicemail_paths"][counter[0] % len(cfg["voicemail_paths"])]
        return {"method": "GET", "url": path, "headers": headers}

    kinds = {
        "token_wrong": token_wrong,
        "token_right": token_right,
        "upload": upload_wav,
        "simulate_wav": simulate,
        "tts": tts,
        "call_list": call_list,
        "voicemail": voicemail,
    }

    async def client(name: str) -> None:
        statuses: dict[str, int] = {}
        latencies: list[float] = []
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    r = await http.request(**kinds[name]())
                    key = str(r.status_code)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                latencies.append(time.perf_counter() - started)
                statuses[key] = statuses.get(key, 0) + 1
        ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
        results[name] = {
            "requests": len(latencies),
            "statuses": statuses,
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "max_ms": round(float(ms.max()), 1),
        }

    await asyncio.gather(*(client(name) for name in cfg.get("kinds", kinds)))
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))), flush=True)
