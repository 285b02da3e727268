"""Turn any accepted audio into what a phone line plays: 8 kHz mono int16 at a steady level.

Level: the target is an *active* RMS level of -19 dBFS (RMS relative to a full-scale square
wave), which is -16 dBm0 on a G.711 line (a 0 dBm0 sine sits 3.17 dB below digital full scale).
"Active" means gated the way ITU-R BS.1770 gates loudness: 20 ms blocks quieter than -60 dBFS are
ignored, then blocks more than 15 dB below the mean of the rest, so pauses between words do not
drag the measure down. We do not K-weight: at 8 kHz the telephone band is what is heard, and a
flat RMS is what G.711 level plans (ITU-T G.223, P.56) are written in.
"""

from __future__ import annotations

import numpy as np
import soxr
from numpy.typing import NDArray

from openivr.audio.wav import AudioFormatError, PcmAudio

SAMPLE_RATE = 8000
TARGET_ACTIVE_DBFS = -19.0
PEAK_CEILING_DBFS = -1.0  # keeps G.711 away from its clipping segment
MAX_GAIN_DB = 40.0  # a near-silent upload is raised this much at most, not to noise level
MAX_EDGE_SILENCE_MS = 100
SILENCE_BELOW_ACTIVE_DB = 35.0  # a 10 ms block this far under the active level counts as silence

_BLOCK = SAMPLE_RATE // 50  # 20 ms level blocks
_TRIM_BLOCK = SAMPLE_RATE // 100  # 10 ms trimming resolution
_FADE = SAMPLE_RATE // 200  # 5 ms fades where trimming cut into a recording
_LIMITER_WINDOW = SAMPLE_RATE // 250  # 4 ms: fast enough to catch a plosive
_ABSOLUTE_GATE_DBFS = -60.0
_RELATIVE_GATE_DB = 15.0

_HIGHPASS_HZ = 80.0

# Built with numpy alone: scipy.signal and scipy.ndimage take seconds to import, and every
# process that serves a prompt imports this module.


def _highpass(samples: NDArray[np.float32]) -> NDArray[np.float32]:
    """Remove DC and rumble below 80 Hz (2nd-order Butterworth magnitude, zero phase).

    Rumble and DC do not pass a phone line but would count in the level and fool the silence
    trim. Filtering in the frequency domain keeps this one vectorised numpy pass.
    """
    size = 1 << max(int(len(samples) - 1).bit_length(), 1)
    spectrum = np.fft.rfft(samples, n=size)
    frequencies = np.fft.rfftfreq(size, d=1.0 / SAMPLE_RATE)
    ratio = np.divide(
        _HIGHPASS_HZ, frequencies, out=np.full_like(frequencies, np.inf), where=frequencies > 0
    )
    spectrum *= 1.0 / np.sqrt(1.0 + ratio**4)
    return np.asarray(np.fft.irfft(spectrum, n=size)[: len(samples)], dtype=np.float32)


def _moving_min(values: NDArray[np.float32], width: int) -> NDArray[np.float32]:
    """Centred moving minimum over an odd width in O(n) (van Herk / Gil-Werman)."""
    half = width // 2
    padded = np.pad(values, (half, half + (-(len(values) + 2 * half)) % width), mode="edge")
    blocks = padded.reshape(-1, width)
    forward = np.minimum.accumulate(blocks, axis=1).reshape(-1)
    backward = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].reshape(-1)
    # Window [i, i + width - 1] = suffix-min from i in its block, prefix-min to its end.
    result = np.minimum(backward[: len(values)], forward[width - 1 : width - 1 + len(values)])
    return np.asarray(result, dtype=np.float32)


def _moving_mean(values: NDArray[np.float32], width: int) -> NDArray[np.float32]:
    """Centred moving average over width samples, edges repeated."""
    half = width // 2
    padded = np.pad(values.astype(np.float64), (half, width - 1 - half), mode="edge")
    sums = np.cumsum(np.concatenate([[0.0], padded]))
    return np.asarray((sums[width:] - sums[:-width]) / width, dtype=np.float32)


def _db(power: float) -> float:
    return 10.0 * float(np.log10(max(power, 1e-20)))


def active_level_dbfs(samples: NDArray[np.float32]) -> float:
    """Gated RMS level in dBFS of float samples (full scale 1.0) at 8 kHz."""
    usable = len(samples) - len(samples) % _BLOCK
    if usable == 0:
        return _db(float(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else -200.0
    powers = np.mean(np.square(samples[:usable].reshape(-1, _BLOCK), dtype=np.float64), axis=1)
    loud = powers[powers > 10 ** (_ABSOLUTE_GATE_DBFS / 10)]
    if loud.size == 0:
        return _db(float(np.mean(powers)))
    gated = loud[loud > np.mean(loud) * 10 ** (-_RELATIVE_GATE_DB / 10)]
    return _db(float(np.mean(gated)))


def _limit(samples: NDArray[np.float32], ceiling: float) -> NDArray[np.float32]:
    """Look-ahead peak limiter: gain dips smoothly around peaks, never overshooting the ceiling."""
    magnitude = np.abs(samples)
    if float(magnitude.max(initial=0.0)) <= ceiling:
        return samples
    needed = np.minimum(1.0, ceiling / np.maximum(magnitude, 1e-9)).astype(np.float32)
    # A moving minimum over 2W+1 then a moving mean over W: every averaged value is at most the
    # gain the centre sample needs, so the result stays under the ceiling without hard clipping.
    floor = _moving_min(needed, 2 * _LIMITER_WINDOW + 1)
    gain = _moving_mean(floor, _LIMITER_WINDOW)
    return np.asarray(samples * np.minimum(gain, needed), dtype=np.float32)


def _trim(samples: NDArray[np.float32], threshold_dbfs: float) -> NDArray[np.float32]:
    """Cut leading and trailing silence down to at most MAX_EDGE_SILENCE_MS, fading at cuts."""
    usable = len(samples) - len(samples) % _TRIM_BLOCK
    blocks = np.mean(np.square(samples[:usable].reshape(-1, _TRIM_BLOCK)), axis=1)
    sound = np.nonzero(blocks > 10 ** (threshold_dbfs / 10))[0]
    if sound.size == 0:
        raise AudioFormatError("silent_audio", "the audio is silent")
    keep = MAX_EDGE_SILENCE_MS * SAMPLE_RATE // 1000
    start = max(0, int(sound[0]) * _TRIM_BLOCK - keep)
    end_of_sound = (int(sound[-1]) + 1) * _TRIM_BLOCK
    if end_of_sound >= usable:
        end_of_sound = len(samples)  # the sound runs into the unblocked tail: keep it all
    end = min(len(samples), end_of_sound + keep)
    trimmed = samples[start:end].copy()
    fade = np.linspace(0.0, 1.0, min(_FADE, len(trimmed) // 2), dtype=np.float32)
    if start > 0 and fade.size:
        trimmed[: fade.size] *= fade
    if end < len(samples) and fade.size:
        trimmed[len(trimmed) - fade.size :] *= fade[::-1]
    return trimmed


def to_mono_8k(audio: PcmAudio) -> NDArray[np.float32]:
    """Downmix to mono and resample to 8 kHz with soxr's steep anti-aliasing filter."""
    if audio.samples.size == 0:
        raise AudioFormatError("empty_audio", "the audio has no samples")
    # Mean of channels (not sum) so a stereo file cannot clip when its channels agree; as a
    # matrix product because np.mean along a short axis is ten times slower.
    weights = np.full(audio.channels, 1.0 / (audio.channels * 32768.0), dtype=np.float32)
    mono = np.asarray(audio.samples @ weights, dtype=np.float32)
    if audio.sample_rate == SAMPLE_RATE:
        return np.ascontiguousarray(mono)
    resampled = soxr.resample(mono, audio.sample_rate, SAMPLE_RATE, quality="HQ")
    return np.asarray(resampled, dtype=np.float32)


def normalise(audio: PcmAudio) -> NDArray[np.int16]:
    """Upload or synthesised speech as 8 kHz mono int16 at -16 dBm0 with edges trimmed."""
    mono = to_mono_8k(audio)
    filtered = _highpass(mono)
    level = active_level_dbfs(filtered)
    gain_db = min(TARGET_ACTIVE_DBFS - level, MAX_GAIN_DB)
    levelled = filtered * np.float32(10 ** (gain_db / 20))
    trimmed = _trim(levelled, TARGET_ACTIVE_DBFS - SILENCE_BELOW_ACTIVE_DB)
    limited = _limit(trimmed, 10 ** (PEAK_CEILING_DBFS / 20))
    return np.clip(np.round(limited * 32768.0), -32768, 32767).astype(np.int16)
