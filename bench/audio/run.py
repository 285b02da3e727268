"""Audio layer benchmarks: speech render, cache hits, upload normalisation.

Run by hand: .venv/bin/python bench/audio/run.py
Targets: 10-word render <= 300 ms, cache hit from disk <= 2 ms, 60 s 44.1 kHz stereo upload
normalised <= 500 ms.
"""

from __future__ import annotations

import statistics
import struct
import tempfile
import time
from collections.abc import Callable

import numpy as np

from openivr.audio.cache import RenderCache
from openivr.audio.normalise import normalise
from openivr.audio.tts import SpeechEngine
from openivr.audio.wav import PcmAudio, parse_wav

TEN_WORDS = "Thank you for calling. Please hold while we connect you."


def timed(action: Callable[[], object], runs: int) -> list[float]:
    """Wall time in milliseconds of each run."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def stereo_upload(seconds: float, rate: int) -> bytes:
    """A 16-bit stereo WAV of a speech-like signal (noise bursts modulated at syllable rate)."""
    rng = np.random.default_rng(7)
    n = int(seconds * rate)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / rate)
    left = rng.normal(0, 0.1, n) * envelope
    right = 0.8 * left + rng.normal(0, 0.01, n)
    data = (np.stack([left, right], axis=1) * 32767).clip(-32768, 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 2, rate, rate * 4, 4, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data))
    return b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data


def main() -> None:
    engine = SpeechEngine()
    engine.synthesize("warm up", "en")
    rows: list[tuple[str, list[float], float]] = []

    with tempfile.TemporaryDirectory() as directory:
        counter = iter(range(10**6))

        def render_miss() -> None:
            # A fresh cache per run so every render is a miss (synthesis, normalise, 3 fsyncs).
            RenderCache(f"{directory}/miss{next(counter)}", engine).render("en", TEN_WORDS)

        rows.append(("render 10 words, cache miss", timed(render_miss, 10), 300))

        cache = RenderCache(f"{directory}/hit", engine)
        cache.render("en", TEN_WORDS)
        rows.append(("cache hit, memory", timed(lambda: cache.render("en", TEN_WORDS), 200), 2))

        def disk_hit() -> None:
            RenderCache(f"{directory}/hit", engine).render("en", TEN_WORDS)

        rows.append(("cache hit, disk (new cache)", timed(disk_hit, 200), 2))

    # 60 s of 44.1 kHz stereo is 10.6 MB, over the 10 MB upload cap: parse the longest file
    # that fits (59 s), and normalise the full 60 s as decoded audio.
    upload = stereo_upload(59, 44100)
    rows.append(("parse 59 s 44.1 kHz stereo WAV", timed(lambda: parse_wav(upload), 5), 500))
    sixty = stereo_upload(60, 44100)
    audio = PcmAudio(
        np.frombuffer(sixty, dtype="<i2", offset=44).astype(np.int16).reshape(-1, 2), 44100
    )
    rows.append(("normalise 60 s 44.1 kHz stereo", timed(lambda: normalise(audio), 5), 500))
    synth_only = timed(lambda: engine.synthesize(TEN_WORDS, "en"), 10)
    rows.append(("eSpeak synthesis only, 10 words", synth_only, 300))

    print(f"{'benchmark':34} {'median ms':>10} {'p90 ms':>8} {'target':>8}")
    for name, times, target in rows:
        p90 = sorted(times)[int(0.9 * (len(times) - 1))]
        median = statistics.median(times)
        verdict = "ok" if median <= target else "SLOW"
        print(f"{name:34} {median:10.2f} {p90:8.2f} {target:>6} ms {verdict}")


if __name__ == "__main__":
    main()
