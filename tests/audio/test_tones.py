"""Beep, ringback, DTMF and silence generators."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from openivr.audio import tones


def peaks(samples: NDArray[np.int16], count: int) -> list[float]:
    """The `count` strongest frequencies, one per spectral lobe, in Hz, sorted."""
    padded = np.zeros(max(8000, len(samples)))
    padded[: len(samples)] = samples * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(padded))
    hz_per_bin = 8000 / len(padded)
    found: list[float] = []
    for _ in range(count):
        bin_ = int(np.argmax(spectrum))
        found.append(bin_ * hz_per_bin)
        lobe = int(15 / hz_per_bin)
        spectrum[max(0, bin_ - lobe) : bin_ + lobe] = 0
    return sorted(found)


@pytest.mark.parametrize("key", list("0123456789*#ABCD"))
def test_dtmf_key_is_its_row_and_column_frequencies(key: str) -> None:
    samples = tones.dtmf(key, ms=100)
    assert samples.dtype == np.int16 and len(samples) == 800
    low, high = peaks(samples, 2)
    row, column = tones.DTMF_FREQUENCIES[key]
    assert low == pytest.approx(row, abs=3)
    assert high == pytest.approx(column, abs=3)


def test_dtmf_rejects_a_key_that_is_not_on_the_pad() -> None:
    with pytest.raises(ValueError, match="'E' is not a DTMF key"):
        tones.dtmf("E")


def test_dtmf_sequence_has_tones_and_gaps() -> None:
    samples = tones.dtmf_sequence("12", tone_ms=50, gap_ms=50)
    assert len(samples) == 3 * 400
    assert not samples[400:800].any()
    assert peaks(samples[800:], 2) == pytest.approx([697, 1336], abs=5)


def test_beep_is_a_quarter_second_at_1_khz() -> None:
    samples = tones.beep()
    assert len(samples) == 2000
    assert peaks(samples, 1) == pytest.approx([1000], abs=3)
    assert abs(int(samples[0])) < 100 and abs(int(samples[-1])) < 100  # ramped: no click


def test_eu_ringback_is_425_hz_one_second_on_four_off() -> None:
    samples = tones.ringback(cycles=2)
    assert len(samples) == 2 * 5 * 8000
    tenths = np.abs(samples.astype(np.int32)).reshape(-1, 800).max(axis=1) > 1000
    assert tenths.tolist() == ([True] * 10 + [False] * 40) * 2
    assert peaks(samples[:8000], 1) == pytest.approx([425], abs=3)


def test_us_ringback_is_440_plus_480_hz_two_seconds_on() -> None:
    samples = tones.ringback(style="us")
    assert len(samples) == 6 * 8000
    tenths = np.abs(samples.astype(np.int32)).reshape(-1, 800).max(axis=1) > 1000
    assert tenths.tolist() == [True] * 20 + [False] * 40
    assert peaks(samples[:16000], 2) == pytest.approx([440, 480], abs=3)


def test_silence_is_zeros_of_the_asked_length() -> None:
    samples = tones.silence(20)
    assert samples.dtype == np.int16 and len(samples) == 160 and not samples.any()
