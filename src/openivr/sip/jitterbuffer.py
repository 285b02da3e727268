"""A small jitter buffer for recording: puts RTP payloads back in order and fills the gaps."""

from __future__ import annotations

_NO_AUDIO = b""  # the slot of a packet that carried no audio (see skip)


class JitterBuffer:
    """Reorders payloads by RTP sequence number (wrap-aware) and fills losses with silence.

    Frames are released once `depth` newer packets have arrived behind them, so a packet
    arriving up to `depth` places late still lands in its slot; later than that it is dropped.

    A restart of the caller's stream (a new SSRC, a sequence jump beyond `MAX_GAP`, a packet
    "late" by its sequence number but not by its timestamp, or `RESTART_RUN` packets in a row
    more than `FAR_BEHIND` places late) is no loss and no lateness: what is held is released
    and the stream goes on from the new packet, with no silence between.
    """

    # A jump larger than this many frames is a restart of the stream, not a loss to fill.
    MAX_GAP = 250
    # Consecutive packets this far behind, with nothing newer between, are a stream that went
    # back (the same SSRC, numbers and timestamps restarted), not packets held in the network.
    FAR_BEHIND = 25
    RESTART_RUN = 3

    def __init__(self, silence: bytes, depth: int = 4) -> None:
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        self._silence = silence
        self._depth = depth
        self._slots: dict[int, bytes] = {}
        self._next: int | None = None  # extended sequence number of the next frame to release
        self._highest = 0  # highest extended sequence number seen
        self._highest_ts: int | None = None  # its RTP timestamp, when given
        self._ssrc: int | None = None  # the stream followed, when given
        self._previous_ssrc: int | None = None  # the one before a restart: stragglers are late
        self._behind: list[tuple[int, int, bytes, int | None]] = []  # far-late run: ext, seq, ...
        self.lost = 0
        self.late = 0

    def _extend(self, sequence: int) -> int:
        # Choose the extended number closest to the highest seen (handles 65535 -> 0).
        delta = ((sequence - self._highest) + 0x8000) % 0x10000 - 0x8000
        return self._highest + delta

    def push(
        self, sequence: int, payload: bytes, ssrc: int | None = None, timestamp: int | None = None
    ) -> list[bytes]:
        """Add a packet; returns the frames now ready, in order."""
        if self._next is None:
            return self._restart(sequence, payload, ssrc, timestamp)
        if ssrc is not None and ssrc != self._ssrc:
            if ssrc == self._previous_ssrc:
                self.late += 1  # a straggler of the stream that was replaced
                return []
            return self._restart(sequence, payload, ssrc, timestamp)
        ext = self._extend(sequence)
        if abs(ext - self._highest) > self.MAX_GAP or (
            ext < self._next and self._not_behind(timestamp)
        ):
            return self._restart(sequence, payload, ssrc, timestamp)
        if ext < self._next or ext in self._slots:
            if ext < self._next - self.FAR_BEHIND:
                return self._far_behind(ext, sequence, payload, timestamp)
            self.late += 1
            return []
        self._behind.clear()
        self._slots[ext] = payload
        if ext > self._highest:
            # An event packet's timestamp is its event's start, not its place: none is kept.
            self._highest, self._highest_ts = ext, timestamp
        return self._release()

    def _not_behind(self, timestamp: int | None) -> bool:
        # A packet reordered in the network (or repeated) is no newer than the newest one.
        if timestamp is None or self._highest_ts is None:
            return False
        return 0 < ((timestamp - self._highest_ts) & 0xFFFFFFFF) < 0x80000000

    def _far_behind(
        self, ext: int, sequence: int, payload: bytes, timestamp: int | None
    ) -> list[bytes]:
        run = self._behind
        if not run or ext != run[-1][0] + 1:
            run.clear()
        run.append((ext, sequence, payload, timestamp))
        if len(run) < self.RESTART_RUN:
            self.late += 1
            return []
        self.late -= len(run) - 1  # counted late on arrival; they start the stream again
        packets = [(seq, data, ts) for _, seq, data, ts in run]
        run.clear()
        seq, data, ts = packets[0]
        out = self._restart(seq, data, self._ssrc, ts)
        for seq, data, ts in packets[1:]:
            out += self.push(seq, data, self._ssrc, ts)
        return out

    def _restart(
        self, sequence: int, payload: bytes, ssrc: int | None, timestamp: int | None
    ) -> list[bytes]:
        # The stream starts (again) at this packet: what is held goes out first, then this.
        ready = self.flush()
        if ssrc is not None and ssrc != self._ssrc:
            self._previous_ssrc, self._ssrc = self._ssrc, ssrc
        self._next = self._highest = sequence
        self._highest_ts = timestamp
        self._slots[sequence] = payload
        self._behind.clear()
        return ready + self._release()

    def skip(self, sequence: int, ssrc: int | None = None) -> list[bytes]:
        """A packet of the stream that carries no audio: an RFC 4733 event shares the audio's
        sequence numbers (a phone holding a key sends one between every two audio packets).
        Its place is taken, not filled with silence as a loss; returns the frames now ready."""
        return self.push(sequence, _NO_AUDIO, ssrc)

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
