"""WAV import (uncompressed 16-bit PCM only) and export.

RIFF chunks are parsed by hand rather than with the stdlib `wave` module: `wave` on Python 3.11
rejects WAVE_FORMAT_EXTENSIBLE files (which many editors write for plain PCM), reports every other
format only as "unknown format: N", and silently returns fewer frames for a truncated data chunk.
Users uploading prompts need to be told exactly what is wrong with their file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000

_FORMAT_PCM = 0x0001
_FORMAT_FLOAT = 0x0003
_FORMAT_EXTENSIBLE = 0xFFFE
# The tail every WAVE_FORMAT_EXTENSIBLE sub-format GUID shares; its first two bytes are the tag.
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")

# Names users recognise for the compressed formats seen in the wild.
_COMPRESSED_NAMES: dict[int, str] = {
    0x0002: "Microsoft ADPCM",
    0x0006: "A-law",
    0x0007: "µ-law",
    0x0011: "IMA ADPCM",
    0x0022: "TrueSpeech",
    0x0031: "GSM 6.10",
    0x0040: "G.721 ADPCM",
    0x0050: "MPEG",
    0x0055: "MP3",
    0x0064: "G.726 ADPCM",
    0x0065: "G.722 ADPCM",
    0x0161: "Windows Media Audio",
    0x1600: "AAC",
    0x704F: "Opus",
    0xF1AC: "FLAC",
}


class AudioFormatError(ValueError):
    """An uploaded file that is not audio OpenIVR can use; `code` is stable, `detail` human."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class PcmAudio:
    """Signed 16-bit PCM: `samples` has shape (frames, channels)."""

    samples: NDArray[np.int16]
    sample_rate: int

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return float(self.samples.shape[0] / self.sample_rate)


@dataclass(frozen=True)
class _Format:
    tag: int
    channels: int
    sample_rate: int
    block_align: int
    bits: int


def _format_name(tag: int) -> str:
    name = _COMPRESSED_NAMES.get(tag)
    return f"{name} WAV" if name else f"compressed WAV (format tag 0x{tag:04X})"


def _parse_fmt(body: bytes) -> _Format:
    if len(body) < 16:
        raise AudioFormatError("bad_header", f"the fmt chunk is {len(body)} bytes; 16 is the least")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise AudioFormatError(
                "bad_header", "WAVE_FORMAT_EXTENSIBLE header is shorter than 40 bytes"
            )
        valid_bits = struct.unpack_from("<H", body, 18)[0]
        guid = body[24:40]
        if guid[2:] != _GUID_TAIL:
            raise AudioFormatError(
                "compressed_format", f"WAV with an unknown sub-format {guid.hex()}; use 16-bit PCM"
            )
        tag = struct.unpack_from("<H", guid)[0]
        if tag == _FORMAT_PCM and valid_bits not in (0, bits):
            raise AudioFormatError(
                "unsupported_bit_depth",
                f"{valid_bits}-bit samples in {bits}-bit containers; only 16-bit PCM is accepted",
            )
    return _Format(tag, channels, rate, block_align, bits)


def _check_format(fmt: _Format) -> None:
    if fmt.tag == _FORMAT_FLOAT:
        raise AudioFormatError(
            "float_samples", f"{fmt.bits}-bit floating-point WAV; only 16-bit PCM is accepted"
        )
    if fmt.tag != _FORMAT_PCM:
        raise AudioFormatError(
            "compressed_format",
            f"{_format_name(fmt.tag)}; only uncompressed 16-bit PCM is accepted",
        )
    if fmt.bits != 16:
        raise AudioFormatError(
            "unsupported_bit_depth", f"{fmt.bits}-bit PCM; only 16-bit PCM is accepted"
        )
    if fmt.channels < 1:
        raise AudioFormatError("bad_header", "the header says the file has no channels")
    if fmt.block_align != 2 * fmt.channels:
        raise AudioFormatError(
            "bad_header",
            f"block align {fmt.block_align} does not match {fmt.channels} channel(s) of 16 bits",
        )
    if not MIN_SAMPLE_RATE <= fmt.sample_rate <= MAX_SAMPLE_RATE:
        raise AudioFormatError(
            "unsupported_sample_rate",
            f"sample rate {fmt.sample_rate} Hz; {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz accepted",
        )


def parse_wav(data: bytes) -> PcmAudio:
    """Read an uploaded WAV file; raises AudioFormatError saying exactly what is wrong."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise AudioFormatError(
            "file_too_large",
            f"the file is {len(data)} bytes; at most {MAX_UPLOAD_BYTES} bytes (10 MB) accepted",
        )
    if len(data) < 12 or data[0:4] not in (b"RIFF", b"RIFX", b"RF64") or data[8:12] != b"WAVE":
        raise AudioFormatError("not_wav", "the file is not a WAV file (no RIFF/WAVE header)")
    if data[0:4] != b"RIFF":
        kind = "big-endian RIFX" if data[0:4] == b"RIFX" else "RF64"
        raise AudioFormatError("bad_header", f"{kind} WAV files are not supported")

    fmt: _Format | None = None
    pos = 12
    # The RIFF size field is often wrong in files from real editors: walk the chunks instead.
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        body_start = pos + 8
        if chunk_id == b"fmt ":
            if body_start + size > len(data):
                raise AudioFormatError("bad_header", "the fmt chunk runs past the end of the file")
            fmt = _parse_fmt(data[body_start : body_start + size])
            _check_format(fmt)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioFormatError("bad_header", "the data chunk comes before the fmt chunk")
            available = len(data) - body_start
            if size > available:
                raise AudioFormatError(
                    "truncated",
                    f"the data chunk announces {size} bytes but only {available} are present; "
                    "the file is truncated",
                )
            if size % fmt.block_align:
                raise AudioFormatError(
                    "truncated", "the data chunk ends in the middle of a sample frame"
                )
            if size == 0:
                raise AudioFormatError("empty_audio", "the WAV file has no audio samples")
            samples = np.frombuffer(data, dtype="<i2", count=size // 2, offset=body_start)
            return PcmAudio(
                samples.astype(np.int16).reshape(-1, fmt.channels), sample_rate=fmt.sample_rate
            )
        pos = body_start + size + (size & 1)  # chunks are padded to even length
    if fmt is None:
        raise AudioFormatError("bad_header", "the WAV file has no fmt chunk")
    raise AudioFormatError("empty_audio", "the WAV file has no data chunk")


def write_wav(samples: NDArray[np.int16], rate: int) -> bytes:
    """A mono 16-bit PCM WAV file holding the given samples."""
    pcm = np.ascontiguousarray(samples, dtype="<i2").reshape(-1).tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm),
        b"WAVE",
        b"fmt ",
        16,
        _FORMAT_PCM,
        1,
        rate,
        rate * 2,
        2,
        16,
        b"data",
        len(pcm),
    )
    return header + pcm
