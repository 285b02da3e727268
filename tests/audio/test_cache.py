"""Prepared prompt files and the render cache: one render per key, whoever asks."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from openivr.audio import g711
from openivr.audio.cache import RenderCache
from openivr.audio.prepared import PreparedAudio, PreparedAudioMissing, prepare
from openivr.audio.tones import beep
from openivr.audio.tts import SpeechEngine, TtsError
from openivr.audio.wav import parse_wav


class CountingEngine(SpeechEngine):
    """The real engine, slowed down so racing renders overlap, counting its syntheses."""

    def __init__(self, tally: Path, delay: float = 0.3) -> None:
        super().__init__()
        self.tally = tally
        self.delay = delay

    def synthesize(self, text: str, voice: str) -> tuple[NDArray[np.int16], int]:
        with self.tally.open("a") as handle:
            handle.write(f"{os.getpid()} {voice} {text}\n")
        time.sleep(self.delay)
        return super().synthesize(text, voice)


def renders(tally: Path) -> int:
    return len(tally.read_text().splitlines()) if tally.exists() else 0


def test_prepared_audio_round_trips_through_its_files(tmp_path: Path) -> None:
    pcm = np.concatenate([beep(), np.zeros(55, dtype=np.int16)])  # not a whole number of frames
    saved = prepare(pcm, tmp_path / "sub" / "beep")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == [
        "beep.alaw",
        "beep.ulaw",
        "beep.wav",
    ]
    wav = parse_wav((tmp_path / "sub" / "beep.wav").read_bytes())
    assert wav.sample_rate == 8000 and np.array_equal(wav.samples[:, 0], pcm)

    loaded = PreparedAudio.load(tmp_path / "sub" / "beep")
    assert np.array_equal(loaded.pcm, pcm)
    assert loaded.duration == pytest.approx(len(pcm) / 8000)
    for codec in ("PCMU", "PCMA"):
        frames = loaded.frames(codec)
        assert frames == saved.frames(codec)
        assert all(len(f) == 160 for f in frames)
        assert len(frames) == -(-len(pcm) // 160)
        decoded = g711.decode(b"".join(frames), codec)[: len(pcm)]
        assert np.abs(decoded.astype(np.int32) - pcm).max() < 1100


def test_partly_written_entry_is_missing_not_broken(tmp_path: Path) -> None:
    prepare(beep(), tmp_path / "p")
    (tmp_path / "p.wav").unlink()  # as if the process died before the last rename
    with pytest.raises(PreparedAudioMissing):
        PreparedAudio.load(tmp_path / "p")
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_rendered_prompt_is_found_on_disk_by_a_new_cache(tmp_path: Path) -> None:
    tally = tmp_path / "tally"
    first = RenderCache(tmp_path / "cache", CountingEngine(tally, delay=0)).render("en", "Hello.")
    again = RenderCache(tmp_path / "cache", CountingEngine(tally, delay=0)).render("en", "Hello.")
    assert renders(tally) == 1
    assert np.array_equal(first.pcm, again.pcm) and first.ulaw == again.ulaw


def test_voice_and_text_each_make_a_new_entry(tmp_path: Path) -> None:
    tally = tmp_path / "tally"
    cache = RenderCache(tmp_path / "cache", CountingEngine(tally, delay=0))
    cache.render("en", "Hello.")
    cache.render("en-fe", "Hello.")
    cache.render("en", "Hello!")
    cache.render("en", "Hello.")
    assert renders(tally) == 3
    assert cache.cached("en", "Hello.") is not None and cache.cached("swe", "Hej.") is None


def test_engine_version_is_part_of_the_key(tmp_path: Path) -> None:
    tally = tmp_path / "tally"
    engine = CountingEngine(tally, delay=0)
    cache = RenderCache(tmp_path / "cache", engine)
    cache.render("en", "Hello.")
    engine.version = "espeak-ng 9.99; openivr-tts 99"
    cache.render("en", "Hello.")
    assert renders(tally) == 2


def test_eight_threads_asking_at_once_render_once(tmp_path: Path) -> None:
    tally = tmp_path / "tally"
    cache = RenderCache(tmp_path / "cache", CountingEngine(tally))
    start = threading.Barrier(8)
    results: list[PreparedAudio] = []

    def ask() -> None:
        start.wait()
        results.append(cache.render("swe", "Välkommen till växeln."))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert renders(tally) == 1
    assert len(results) == 8 and all(r.ulaw == results[0].ulaw for r in results)


def test_two_processes_asking_at_once_render_once(tmp_path: Path) -> None:
    tally = tmp_path / "tally"
    go = tmp_path / "go"
    script = tmp_path / "ask.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from pathlib import Path
            from test_cache import CountingEngine
            from openivr.audio.cache import RenderCache
            cache = RenderCache({str(tmp_path / "cache")!r}, CountingEngine(Path({str(tally)!r})))
            while not Path({str(go)!r}).exists():
                time.sleep(0.005)
            print(cache.render("fr-fe", "Bonjour et bienvenue.").duration)
            """
        )
    )
    procs = [
        subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    time.sleep(1.0)  # both are importing numpy and eSpeak; then start them together
    go.touch()
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert renders(tally) == 1
    assert outputs[0] == outputs[1] and float(outputs[0]) > 0.5


async def test_concurrent_awaits_share_one_render(tmp_path: Path) -> None:
    tally = tmp_path / "tally"
    cache = RenderCache(tmp_path / "cache", CountingEngine(tally))
    results = await asyncio.gather(*(cache.render_async("spa", "Hola.") for _ in range(5)))
    assert renders(tally) == 1
    assert all(r is results[0] for r in results)
    assert await cache.render_async("spa", "Hola.") is results[0]


async def test_a_cancelled_await_does_not_cancel_the_others(tmp_path: Path) -> None:
    tally = tmp_path / "tally"
    cache = RenderCache(tmp_path / "cache", CountingEngine(tally))
    impatient = asyncio.ensure_future(cache.render_async("gr-fe", "Γεια σας."))
    patient = asyncio.ensure_future(cache.render_async("gr-fe", "Γεια σας."))
    await asyncio.sleep(0.05)
    impatient.cancel()
    audio = await patient
    assert audio.duration > 0.5 and renders(tally) == 1


def test_bad_request_is_refused_without_leaving_files(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path / "cache", SpeechEngine())
    with pytest.raises(TtsError) as caught:
        cache.render("klingon", "Hello.")
    assert caught.value.field == "voice"
    with pytest.raises(TtsError):
        asyncio.run(cache.render_async("en", ""))
    assert list((tmp_path / "cache").iterdir()) == []


def test_memory_holds_at_most_its_size(tmp_path: Path) -> None:
    tally = tmp_path / "tally"
    cache = RenderCache(tmp_path / "cache", CountingEngine(tally, delay=0), memory_entries=2)
    for word in ("One.", "Two.", "Three."):
        cache.render("en", word)
    # "One." fell out of memory but is still on disk: no new render.
    cache.render("en", "One.")
    assert renders(tally) == 3
    assert len(cache._memory) == 2
