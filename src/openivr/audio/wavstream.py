"""A 16-bit 8 kHz WAV file written as it goes: header first, audio appended, sizes fixed up.

A file killed mid-write is still a WAV: its header's sizes say what was there at the last
fix-up, and `repair` sets them from the file's real length (what a recording a killed node
left behind needs at the next start).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

SAMPLE_RATE = 8000
HEADER_BYTES = 44
_RIFF_SIZE_AT = 4
_DATA_SIZE_AT = 40


def header(channels: int, data_bytes: int) -> bytes:
    """The 44-byte PCM WAV header of `data_bytes` of 16-bit audio in `channels` channels."""
    block = 2 * channels
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, SAMPLE_RATE, SAMPLE_RATE * block, block, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class WavStream:
    """An open WAV file that audio is appended to (one writer, not thread-safe)."""

    def __init__(self, path: Path, channels: int) -> None:
        self.path = path
        self.channels = channels
        self.data_bytes = 0
        # O_EXCL: a recording never overwrites another file of the same name.
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            self._write(header(channels, 0))
        except BaseException:
            self.close()
            raise

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def append(self, pcm: bytes) -> None:
        """Add 16-bit little-endian frames (OSError when the disk refuses them: what part of
        them was written is cut off again, so the file ends where its audio does)."""
        try:
            self._write(pcm)
        except OSError:
            assert self._fd is not None
            try:
                os.ftruncate(self._fd, HEADER_BYTES + self.data_bytes)
            except OSError:
                pass  # `repair` cuts a partial last frame off; the header still says less
            raise
        self.data_bytes += len(pcm)

    def fix_sizes(self) -> None:
        """Write the sizes of what is there now into the header."""
        assert self._fd is not None
        os.pwrite(self._fd, struct.pack("<I", 36 + self.data_bytes), _RIFF_SIZE_AT)
        os.pwrite(self._fd, struct.pack("<I", self.data_bytes), _DATA_SIZE_AT)

    def sync(self) -> None:
        """Make what was written durable (a power cut keeps it)."""
        if self._fd is not None:
            os.fdatasync(self._fd)

    @property
    def seconds(self) -> float:
        """Length of the audio written so far."""
        return self.data_bytes / (2 * self.channels * SAMPLE_RATE)

    def close(self) -> None:
        """Close the file (sizes as last fixed up)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def repair(path: Path) -> tuple[int, float]:
    """Fix a WAV header written by `WavStream` from the file's length (a partly written last
    frame is cut off); (file size, seconds of audio). OSError when the file cannot be read."""
    with open(path, "r+b") as handle:
        head = handle.read(HEADER_BYTES)
        if len(head) < HEADER_BYTES or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise OSError(f"{path.name} is not a WAV file this node wrote")
        channels = struct.unpack_from("<H", head, 22)[0] or 1
        size = handle.seek(0, os.SEEK_END)
        data = max(0, size - HEADER_BYTES)
        data -= data % (2 * channels)
        handle.truncate(HEADER_BYTES + data)
        handle.seek(_RIFF_SIZE_AT)
        handle.write(struct.pack("<I", 36 + data))
        handle.seek(_DATA_SIZE_AT)
        handle.write(struct.pack("<I", data))
        handle.flush()
        os.fsync(handle.fileno())
    return HEADER_BYTES + data, data / (2 * channels * SAMPLE_RATE)
