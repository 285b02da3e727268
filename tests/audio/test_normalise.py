"""Normalising uploads and speech to 8 kHz mono telephone audio."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from openivr.audio.normalise import (
    MAX_EDGE_SILENCE_MS,
    PEAK_CEILING_DBFS,
    TARGET_ACTIVE_DBFS,
    active_level_dbfs,
    normalise,
)
from openivr.audio.wav import AudioFormatError, PcmAudio, parse_wav, write_wav


def tone(frequency: float, rate: int, seconds: float, amplitude: float = 0.3) -> NDArray[np.int16]:
    t = np.arange(round(rate * seconds)) / rate
    return np.round(amplitude * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def dominant_frequency(samples: NDArray[np.int16], rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def rms_dbfs(samples: NDArray[np.int16]) -> float:
    return float(10 * np.log10(np.mean((samples / 32768.0) ** 2) + 1e-20))


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_uploaded_tone_becomes_8khz_mono_of_same_length_and_pitch(rate: int, channels: int) -> None:
    mono = tone(1000, rate, 2.0)
    upload = write_wav(mono, rate) if channels == 1 else None
    if upload is None:
        # A real stereo upload: build the file by hand, channels interleaved.
        import struct

        data = np.stack([mono, mono], axis=1).astype("<i2").tobytes()
        fmt = struct.pack("<HHIIHH", 1, 2, rate, rate * 4, 4, 16)
        body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
        upload = b"RIFF" + struct.pack("<I", len(body) + 4 + len(data)) + body
        upload += struct.pack("<I", len(data)) + data
    audio = parse_wav(upload)
    assert audio.channels == channels

    out = normalise(audio)

    assert out.dtype == np.int16 and out.ndim == 1
    assert len(out) == pytest.approx(2.0 * 8000, rel=0.01)
    assert dominant_frequency(out) == pytest.approx(1000, abs=5)
    assert rms_dbfs(out) == pytest.approx(TARGET_ACTIVE_DBFS, abs=0.5)


def test_tone_above_telephone_band_is_filtered_not_aliased() -> None:
    # 5 kHz cannot exist at 8 kHz; a naive decimation would fold it to 3 kHz.
    audible = tone(1000, 48000, 1.0)
    upload = np.concatenate([audible, tone(5000, 48000, 1.0), audible])
    out = normalise(PcmAudio(upload.reshape(-1, 1), 48000))
    assert len(out) == pytest.approx(3 * 8000, rel=0.01)
    middle = out[int(1.1 * 8000) : int(1.9 * 8000)]
    assert rms_dbfs(middle) < TARGET_ACTIVE_DBFS - 50


def test_quiet_and_loud_uploads_come_out_at_the_same_level() -> None:
    quiet = normalise(PcmAudio(tone(440, 16000, 1.0, amplitude=0.01).reshape(-1, 1), 16000))
    loud = normalise(PcmAudio(tone(440, 16000, 1.0, amplitude=0.9).reshape(-1, 1), 16000))
    assert rms_dbfs(quiet) == pytest.approx(rms_dbfs(loud), abs=0.5)


def test_peaks_are_limited_not_clipped() -> None:
    # Speech-like: quiet body with loud clicks; levelling the body pushes clicks past full scale.
    rng = np.random.default_rng(1)
    body = rng.normal(0, 0.02, 16000)
    body[::2000] = 0.95
    upload = np.round(body * 32767).astype(np.int16).reshape(-1, 1)
    out = normalise(PcmAudio(upload, 8000))
    ceiling = 32768 * 10 ** (PEAK_CEILING_DBFS / 20)
    assert np.abs(out.astype(np.int32)).max() <= ceiling + 1
    assert np.abs(out.astype(np.int32)).max() < 32767


def test_leading_and_trailing_silence_is_cut_to_100_ms() -> None:
    rate = 16000
    silence = np.zeros(rate, dtype=np.int16)
    upload = np.concatenate([silence, tone(1000, rate, 1.0), silence])
    out = normalise(PcmAudio(upload.reshape(-1, 1), rate))
    keep = MAX_EDGE_SILENCE_MS * 8
    assert len(out) == pytest.approx(8000 + 2 * keep, abs=80)
    loud = np.nonzero(np.abs(out) > 1000)[0]
    assert loud[0] == pytest.approx(keep, abs=80)
    assert len(out) - loud[-1] == pytest.approx(keep, abs=120)  # filter ringing counts as sound


def test_silent_upload_is_refused() -> None:
    with pytest.raises(AudioFormatError) as caught:
        normalise(PcmAudio(np.zeros((8000, 1), dtype=np.int16), 8000))
    assert caught.value.code == "silent_audio"


def test_active_level_ignores_pauses() -> None:
    burst = tone(500, 8000, 0.5) / 32768.0
    with_pauses = np.concatenate([burst, np.zeros(8000), burst]).astype(np.float32)
    assert active_level_dbfs(with_pauses) == pytest.approx(
        active_level_dbfs(burst.astype(np.float32)), abs=0.2
    )
