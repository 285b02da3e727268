"""In-band DTMF: every key at 40 ms, with twist and noise; never on speech."""

from __future__ import annotations

import json
import struct
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soxr

from openivr.audio import g711
from openivr.audio.tts import SpeechEngine
from openivr.sip.dtmf import COL_HZ, KEYPAD, ROW_HZ, ToneDetector
from tests.conftest import require_binary

PROMPT_TEXTS = resources.files("openivr.apps") / "prompt_texts" / "en-us.json"

RATE = 8000
KEYS = "".join(KEYPAD)


def tone(
    key: str, ms: float, twist_db: float = 0.0, level_dbfs: float = -10.0
) -> npt.NDArray[np.float64]:
    """A DTMF key; positive twist makes the column (high) tone louder than the row tone."""
    row = next(i for i, r in enumerate(KEYPAD) if key in r)
    col = KEYPAD[row].index(key)
    t = np.arange(int(RATE * ms / 1000)) / RATE
    amp = 32767 * 10 ** (level_dbfs / 20) / 2
    low = amp * 10 ** (-twist_db / 40) * np.sin(2 * np.pi * ROW_HZ[row] * t)
    high = amp * 10 ** (twist_db / 40) * np.sin(2 * np.pi * COL_HZ[col] * t + 0.7)
    return low + high


def detect(signal: npt.NDArray[np.float64], chunk: int = 160) -> str:
    detector = ToneDetector()
    found = []
    pcm = np.clip(signal, -32768, 32767).astype(np.int16)
    for i in range(0, len(pcm), chunk):
        found += detector.feed(pcm[i : i + chunk])
    return "".join(found)


def sequence(keys: str, ms: float, gap_ms: float, **kwargs: float) -> npt.NDArray[np.float64]:
    gap = np.zeros(int(RATE * gap_ms / 1000))
    parts = [gap]
    for key in keys:
        parts += [tone(key, ms, **kwargs), gap]
    return np.concatenate(parts)


def test_all_sixteen_keys_at_40ms() -> None:
    assert detect(sequence(KEYS, 40, 40)) == KEYS


@pytest.mark.parametrize("offset", [0, 37, 80, 123])
def test_alignment_with_packet_boundaries_does_not_matter(offset: int) -> None:
    signal = np.concatenate([np.zeros(offset), sequence(KEYS, 40, 40)])
    assert detect(signal) == KEYS


@pytest.mark.parametrize("twist", [-6.0, 6.0])
def test_twist_of_six_db_either_way(twist: float) -> None:
    assert detect(sequence(KEYS, 40, 40, twist_db=twist)) == KEYS


def test_fifteen_db_snr_white_noise() -> None:
    rng = np.random.default_rng(1234)
    signal = sequence(KEYS, 40, 40, level_dbfs=-16.0)
    tone_power = np.mean(tone("5", 1000, level_dbfs=-16.0) ** 2)
    noise = rng.normal(0, np.sqrt(tone_power / 10**1.5), len(signal))
    assert detect(signal + noise) == KEYS


def test_long_key_is_reported_once_and_repeats_are_separate() -> None:
    assert detect(sequence("55", 400, 60)) == "55"


def test_noise_alone_and_single_tones_do_not_fire() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(RATE * 2) / RATE
    assert detect(rng.normal(0, 3000, RATE * 3)) == ""
    assert detect(8000 * np.sin(2 * np.pi * 1000 * t)) == ""  # the recording beep
    assert detect(8000 * np.sin(2 * np.pi * 697 * t)) == ""


@pytest.fixture(scope="module")
def speech() -> list[npt.NDArray[np.float64]]:
    engine = SpeechEngine()
    texts = [
        (
            "Welcome to the voice mailbox. Please leave your message after the tone, and press "
            "the hash key when you are finished. One two three four five six seven eight nine.",
            "en",
        ),
        (
            "Thank you for calling. For sales press one, for support press two, to hear these "
            "options again press star. Your call is important to us.",
            "en-fe",
        ),
        (
            "Bonjour, merci de votre appel. Veuillez patienter, un conseiller va vous répondre.",
            "fr-fe",
        ),
        ("Hola, gracias por llamar. Marque el uno para ventas o el dos para soporte.", "spa"),
    ]
    out = []
    for text, voice in texts:
        samples, rate = engine.synthesize(text, voice)
        pcm = soxr.resample(samples.astype(np.float32), rate, RATE)
        # Loud speech: scale to peak near full scale, the hardest case for false detections.
        out.append(pcm.astype(np.float64) * (30000 / max(1.0, float(np.max(np.abs(pcm))))))
    return out


def test_speech_never_fires(speech: list[npt.NDArray[np.float64]]) -> None:
    total_seconds = sum(len(s) for s in speech) / RATE
    assert total_seconds > 15
    for pcm in speech:
        assert detect(pcm) == ""


def test_keys_are_still_found_after_speech(speech: list[npt.NDArray[np.float64]]) -> None:
    signal = np.concatenate([speech[0][: RATE * 2], sequence("#", 60, 60)])
    assert detect(signal) == "#"


def _pcma_round_trip(pcm: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """What a caller's audio is once it went through PCMA, as the detector gets it."""
    samples = np.clip(pcm, -32768, 32767).astype(np.int16)
    return g711.decode(g711.encode(samples, "PCMA"), "PCMA").astype(np.float64)


def test_the_default_prompts_spoken_as_callers_audio_never_fire() -> None:
    engine = SpeechEngine()
    texts = json.loads(PROMPT_TEXTS.read_text())["prompts"]
    spoken = [text for app in texts.values() for text in app.values()]
    assert len(spoken) >= 9
    for voice in ("en", "en-fe"):
        for text in spoken:
            samples, rate = engine.synthesize(text, voice)
            pcm = soxr.resample(samples.astype(np.float32), rate, RATE).astype(np.float64)
            loud = pcm * (30000 / max(1.0, float(np.max(np.abs(pcm)))))
            assert detect(_pcma_round_trip(loud)) == "", (voice, text)


def test_a_phones_recorded_speech_never_fires_and_a_key_in_it_is_found() -> None:
    """The speech SIPp ships as a phone's RTP (Debian's g711a.pcap), as the IVR bench streams."""
    require_binary("sipp")
    speech = _pcap_speech(Path("/usr/share/sip-tester/g711a.pcap"))
    assert len(speech) > 5 * RATE
    assert detect(speech) == ""
    assert detect(_pcma_round_trip(np.clip(speech * 3, -32768, 32767))) == ""  # shouted
    keyed = np.concatenate([speech[: 3 * RATE], tone("1", 120), speech[3 * RATE :]])
    assert detect(_pcma_round_trip(keyed)) == "1"


def _pcap_speech(path: Path) -> npt.NDArray[np.float64]:
    """The PCMA payloads of an Ethernet pcap's RTP packets, decoded."""
    data = path.read_bytes()
    offset, payloads = 24, []
    while offset + 16 <= len(data):
        incl = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        ip = frame[14:]
        rtp = ip[(ip[0] & 0x0F) * 4 + 8 :]
        if len(rtp) > 12 and rtp[1] & 0x7F == 8:
            payloads.append(rtp[12:])
    return g711.decode(b"".join(payloads), "PCMA").astype(np.float64)
