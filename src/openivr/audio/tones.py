"""Call-progress and signalling tones as int16 8 kHz mono samples.

Ringback follows ITU-T E.180 as used across Europe (and in Sweden, Spain, France, Greece):
425 Hz, 1 s on, 4 s off. The North American 440 + 480 Hz, 2 s on, 4 s off is available with
`style="us"`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE = 8000
_RAMP_MS = 5  # rise/fall time so tones start and stop without a click

# DTMF (ITU-T Q.23): each key is one low (row) plus one high (column) frequency.
_DTMF_ROWS = (697.0, 770.0, 852.0, 941.0)
_DTMF_COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
_DTMF_LAYOUT = ("123A", "456B", "789C", "*0#D")
DTMF_FREQUENCIES: dict[str, tuple[float, float]] = {
    key: (_DTMF_ROWS[row], _DTMF_COLUMNS[column])
    for row, keys in enumerate(_DTMF_LAYOUT)
    for column, key in enumerate(keys)
}


def _samples(ms: float) -> int:
    if ms < 0:
        raise ValueError(f"a duration cannot be negative ({ms} ms)")
    return round(SAMPLE_RATE * ms / 1000)


def _to_int16(signal: NDArray[np.float64]) -> NDArray[np.int16]:
    return np.clip(np.round(signal * 32767.0), -32768, 32767).astype(np.int16)


def _amplitude(level_dbfs: float) -> float:
    """Peak amplitude (full scale = 1) of a sine whose peak sits at level_dbfs."""
    if level_dbfs > 0:
        raise ValueError(f"level {level_dbfs} dBFS is above full scale")
    return float(10 ** (level_dbfs / 20))


def _tone(frequencies: tuple[float, ...], ms: float, level_dbfs: float) -> NDArray[np.float64]:
    """Sum of sines sharing the peak budget, with short ramps at both ends."""
    n = _samples(ms)
    t = np.arange(n) / SAMPLE_RATE
    amplitude = _amplitude(level_dbfs) / len(frequencies)
    signal = sum((amplitude * np.sin(2 * np.pi * f * t) for f in frequencies), start=np.zeros(n))
    ramp = min(_samples(_RAMP_MS), n // 2)
    if ramp:
        envelope = np.linspace(0.0, 1.0, ramp, endpoint=False)
        signal[:ramp] *= envelope
        signal[n - ramp :] *= envelope[::-1]
    return signal


def silence(ms: float) -> NDArray[np.int16]:
    """Digital silence of the given length."""
    return np.zeros(_samples(ms), dtype=np.int16)


def beep(
    frequency: float = 1000.0, ms: float = 250.0, level_dbfs: float = -10.0
) -> NDArray[np.int16]:
    """The beep before a voicemail recording: a 1 kHz, 250 ms sine by default."""
    return _to_int16(_tone((frequency,), ms, level_dbfs))


def ringback(
    cycles: int = 1, style: Literal["eu", "us"] = "eu", level_dbfs: float = -16.0
) -> NDArray[np.int16]:
    """Ringback tone, `cycles` on/off periods: EU 425 Hz 1 s/4 s, US 440+480 Hz 2 s/4 s."""
    if cycles < 1:
        raise ValueError(f"ringback needs at least one cycle, got {cycles}")
    if style == "eu":
        on = _to_int16(_tone((425.0,), 1000, level_dbfs))
    elif style == "us":
        on = _to_int16(_tone((440.0, 480.0), 2000, level_dbfs))
    else:
        raise ValueError(f"unknown ringback style {style!r}; use 'eu' or 'us'")
    period = np.concatenate([on, silence(4000)])
    return np.tile(period, cycles)


def dtmf(key: str, ms: float = 100.0, level_dbfs: float = -6.0) -> NDArray[np.int16]:
    """The in-band DTMF tone of one key (0-9, *, #, A-D)."""
    frequencies = DTMF_FREQUENCIES.get(key.upper())
    if frequencies is None:
        raise ValueError(f"{key!r} is not a DTMF key; use 0-9, *, # or A-D")
    return _to_int16(_tone(frequencies, ms, level_dbfs))


def dtmf_sequence(keys: str, tone_ms: float = 100.0, gap_ms: float = 100.0) -> NDArray[np.int16]:
    """DTMF tones for each key in turn, separated by silence."""
    if not keys:
        raise ValueError("no DTMF keys given")
    parts: list[NDArray[np.int16]] = []
    for index, key in enumerate(keys):
        if index:
            parts.append(silence(gap_ms))
        parts.append(dtmf(key, tone_ms))
    return np.concatenate(parts)
