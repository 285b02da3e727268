"""DTMF from the three places it arrives: RFC 4733 events, SIP INFO bodies and in-band tones."""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from openivr.sip.rtp import TelephoneEvent

ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COL_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
VALID_KEYS = frozenset("0123456789*#ABCD")


class EventDeduplicator:
    """Turns a stream of RFC 4733 packets into one key per event.

    A sender repeats the start packet and usually sends the end packet three times; every
    packet of one event shares its RTP timestamp, so a key is reported the first time a
    timestamp is seen (which is also the earliest moment, good for barge-in).
    """

    def __init__(self, memory: int = 16) -> None:
        self._seen: deque[int] = deque(maxlen=memory)

    def feed(self, timestamp: int, event: TelephoneEvent) -> str | None:
        """The key this packet starts, or None for repeats and non-DTMF events."""
        if timestamp in self._seen:
            return None
        self._seen.append(timestamp)
        return event.key


def parse_info_body(content_type: str, body: bytes) -> str | None:
    """The key in a SIP INFO body (`application/dtmf-relay` or `application/dtmf`), or None."""
    text = body.decode("utf-8", "replace").strip()
    if content_type == "application/dtmf-relay":
        for line in text.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                return _key_of(value.strip())
        return None
    if content_type == "application/dtmf":
        return _key_of(text)
    return None


def _key_of(value: str) -> str | None:
    value = value.upper()
    if value in VALID_KEYS:
        return value
    # Some phones send event codes (10 = '*', 11 = '#') instead of characters.
    if value.isdigit() and int(value) < 16:
        return "0123456789*#ABCD"[int(value)]
    return None


class ToneDetector:
    """In-band DTMF detection with Goertzel filters on 8 kHz 16-bit PCM.

    Windows of 205 samples (25.6 ms, the classic size whose bins separate the DTMF rows)
    slide by 40 samples, so a 40 ms tone always fills at least two whole windows. A window
    holds a key when one row and one column tone carry most of its energy, each clearly
    above its neighbours and the twist between them is small; a key is reported after two
    windows in a row agree and re-armed after two windows without it. Speech fails the
    energy-concentration test because its power is spread over many harmonics.
    """

    WINDOW = 205
    HOP = 40

    def __init__(
        self,
        *,
        sample_rate: int = 8000,
        min_level: float = 400.0,
        concentration: float = 0.6,
        neighbour_db: float = 8.0,
        max_twist_db: float = 8.0,
    ) -> None:
        n = np.arange(self.WINDOW)
        freqs = np.array(ROW_HZ + COL_HZ)
        # A Goertzel filter's output power equals the DFT power at its frequency; evaluating
        # the eight filters as one matrix product is the same sum, done in vectorised form:
        # one real matrix (cosines then sines, WINDOW x 16), so the loud windows a packet
        # completes (up to four of 160 samples) go through in one product.
        phase = 2.0 * np.pi * np.outer(freqs, n) / sample_rate
        self._real_basis: npt.NDArray[np.float64] = np.ascontiguousarray(
            np.concatenate([np.cos(phase), -np.sin(phase)]).T
        )
        self._min_energy = (min_level**2) * self.WINDOW
        self._concentration = concentration
        self._neighbour = 10 ** (neighbour_db / 10)
        self._twist = 10 ** (max_twist_db / 10)
        self._buffer: npt.NDArray[np.float64] = np.zeros(0)
        self._candidate: str | None = None
        self._streak = 0
        self._reported: str | None = None
        self._misses = 0

    def feed(self, samples: npt.NDArray[np.int16] | npt.NDArray[np.float64]) -> list[str]:
        """Analyse more samples; returns the keys that started in them."""
        buffer = np.concatenate([self._buffer, np.asarray(samples, dtype=np.float64)])
        window, hop = self.WINDOW, self.HOP
        count = (len(buffer) - window) // hop + 1 if len(buffer) >= window else 0
        if count <= 0:
            self._buffer = buffer
            return []
        span = buffer[: (count - 1) * hop + window]
        if float(np.dot(span, span)) < self._min_energy:
            # Quiet (a caller listening): no window can be loud when all of them together
            # are not; one product decides it.
            for _ in range(count):
                self._track(None)
            self._buffer = buffer[count * hop :]
            return []
        # Each window's energy from one running sum of squares; only loud windows go through
        # the filters, all of them in one product (a packet completes up to four windows).
        sums = np.concatenate([[0.0], np.cumsum(span**2)])
        starts = np.arange(count) * hop
        energies = (sums[starts + window] - sums[starts]).tolist()
        loud = [i for i, energy in enumerate(energies) if energy >= self._min_energy]
        powers: dict[int, list[float]] = {}
        if loud:
            windows = np.stack([buffer[i * hop : i * hop + window] for i in loud])
            parts = windows @ self._real_basis
            # Normalised so a pure tone at a bin frequency gives its own energy.
            power = (parts[:, :8] ** 2 + parts[:, 8:] ** 2) * (2.0 / window)
            powers = dict(zip(loud, power.tolist(), strict=True))
        keys: list[str] = []
        for i in range(count):
            p = powers.get(i)
            reported = self._track(self._key_of(p, energies[i]) if p is not None else None)
            if reported:
                keys.append(reported)
        self._buffer = buffer[count * hop :]
        return keys

    def _key_of(self, power: list[float], energy: float) -> str | None:
        """The key a loud window holds, from its eight filter powers, or None."""
        rows, cols = power[:4], power[4:]
        row_p, col_p = max(rows), max(cols)
        if row_p + col_p < self._concentration * energy:
            return None
        if sorted(rows)[-2] * self._neighbour > row_p:
            return None
        if sorted(cols)[-2] * self._neighbour > col_p:
            return None
        if row_p > col_p * self._twist or col_p > row_p * self._twist:
            return None
        return KEYPAD[rows.index(row_p)][cols.index(col_p)]

    def _track(self, key: str | None) -> str | None:
        if key is None or key != self._reported:
            self._misses += 1
            if self._misses >= 2:
                self._reported = None
        else:
            self._misses = 0
        if key is None:
            self._candidate, self._streak = None, 0
            return None
        if key == self._candidate:
            self._streak += 1
        else:
            self._candidate, self._streak = key, 1
        if self._streak >= 2 and key != self._reported:
            self._reported = key
            self._misses = 0
            return key
        return None
