"""A small jitter buffer for recording: puts RTP payloads back in order and fills the gaps."""

from __future__ import annotations

_NO_AUDIO = b""  # the slot of a packet that carried no audio (see skip)


class JitterBuffer:
    """Reorders payloads by RTP sequence number (wrap-aware) and fills losses with silence.

    Frames are released once `depth` newer packets have arrived behind them, so a packet
    arriving up to `depth` places late still lands in its slot; later than that it is dropped.
    """

    # A jump larger than this many frames is a restart of the stream, not a loss to fill.
    MAX_GAP = 250

    def __init__(self, silence: bytes, depth: int = 4) -> None:
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        self._silence = silence
        self._depth = depth
        self._slots: dict[int, bytes] = {}
        self._next: int | None = None  # extended sequence number of the next frame to release
        self._highest = 0  # highest extended sequence number seen
        self.lost = 0
        self.late = 0

    def _extend(self, sequence: int) -> int:
        # Choose the extended number closest to the highest seen (handles 65535 -> 0).
        delta = ((sequence - self._highest) + 0x8000) % 0x10000 - 0x8000
        return self._highest + delta

    def push(self, sequence: int, payload: bytes) -> list[bytes]:
        """Add a packet; returns the frames now ready, in order."""
        if self._next is None:
            self._next = self._highest = sequence
            ext = sequence
        else:
            ext = self._extend(sequence)
            if ext - self._highest > self.MAX_GAP or self._highest - ext > self.MAX_GAP:
                ready = self.flush()
                self._next = self._highest = sequence
                self._slots[sequence] = payload
                return ready + self._release()
        if ext < self._next or ext in self._slots:
            self.late += 1
            return []
        self._slots[ext] = payload
        self._highest = max(self._highest, ext)
        return self._release()

    def skip(self, sequence: int) -> list[bytes]:
        """A packet of the stream that carries no audio: an RFC 4733 event shares the audio's
        sequence numbers (a phone holding a key sends one between every two audio packets).
        Its place is taken, not filled with silence as a loss; returns the frames now ready."""
        return self.push(sequence, _NO_AUDIO)

    def _release(self) -> list[bytes]:
        out: list[bytes] = []
        assert self._next is not None
        while self._slots:
            if self._next not in self._slots and self._highest - self._next < self._depth:
                break
            frame = self._take(self._next)
            if frame:
                out.append(frame)
            self._next += 1
        return out

    def _take(self, ext: int) -> bytes:
        frame = self._slots.pop(ext, None)
        if frame is None:
            self.lost += 1
            return self._silence
        if not frame:  # a packet without audio (skip): nothing to play, nothing lost
            return frame
        self._silence = bytes([self._silence[0]]) * len(frame) if self._silence else frame
        return frame

    def flush(self) -> list[bytes]:
        """Release everything held (end of recording), filling gaps."""
        out: list[bytes] = []
        if self._next is None:
            return out
        while self._slots:
            frame = self._take(self._next)
            if frame:
                out.append(frame)
            self._next += 1
        return out
