"""WAV import (PCM of 8, 16, 24 and 32 bits, 32/64-bit float, A-law and µ-law) and export.

RIFF chunks are parsed by hand rather than with the stdlib `wave` module: `wave` on Python 3.11
rejects WAVE_FORMAT_EXTENSIBLE files (which many editors write for plain PCM), reports every other
format only as "unknown format: N", and silently returns fewer frames for a truncated data chunk.
Users uploading prompts need to be told exactly what is wrong with their file.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from openivr.audio import g711

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000

_FORMAT_PCM = 0x0001
_FORMAT_FLOAT = 0x0003
_FORMAT_ALAW = 0x0006
_FORMAT_MULAW = 0x0007
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


Samples = NDArray[np.int16]


def _pcm8(raw: bytes) -> Samples:
    # 8-bit WAV is unsigned with 128 as silence.
    return ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)


def _pcm16(raw: bytes) -> Samples:
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


def _pcm24(raw: bytes) -> Samples:
    # The top two bytes of each little-endian triple are the 16-bit sample (the low byte is
    # dropped, as converters without dither do).
    triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
    return triples[:, 1:].copy().view("<i2").reshape(-1).astype(np.int16)


def _pcm32(raw: bytes) -> Samples:
    return (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)


def _float(dtype: str) -> Callable[[bytes], Samples]:
    def decode(raw: bytes) -> Samples:
        values = np.nan_to_num(np.frombuffer(raw, dtype=dtype).astype(np.float64))
        return np.round(np.clip(values, -1.0, 1.0) * 32767).astype(np.int16)

    return decode


def _g711(decode: Callable[[bytes], Samples]) -> Callable[[bytes], Samples]:
    return lambda raw: decode(raw).astype(np.int16)


@dataclass(frozen=True)
class _Encoding:
    name: str
    bytes_per_sample: int
    decode: Callable[[bytes], Samples]


# Every sample encoding accepted, by (format tag, bits per sample); each is converted to 16-bit
# PCM, the form the rest of the audio path (resampling, levelling, G.711) works on.
ENCODINGS: dict[tuple[int, int], _Encoding] = {
    (_FORMAT_PCM, 8): _Encoding("8-bit PCM", 1, _pcm8),
    (_FORMAT_PCM, 16): _Encoding("16-bit PCM", 2, _pcm16),
    (_FORMAT_PCM, 24): _Encoding("24-bit PCM", 3, _pcm24),
    (_FORMAT_PCM, 32): _Encoding("32-bit PCM", 4, _pcm32),
    (_FORMAT_FLOAT, 32): _Encoding("32-bit float", 4, _float("<f4")),
    (_FORMAT_FLOAT, 64): _Encoding("64-bit float", 8, _float("<f8")),
    (_FORMAT_ALAW, 8): _Encoding("A-law", 1, _g711(g711.alaw_decode)),
    (_FORMAT_MULAW, 8): _Encoding("µ-law", 1, _g711(g711.ulaw_decode)),
}
_ACCEPTED = "PCM of 8, 16, 24 or 32 bits, 32- or 64-bit float, A-law or µ-law (8-bit)"


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
                "compressed_format", f"WAV with an unknown sub-format {guid.hex()}; use {_ACCEPTED}"
            )
        tag = struct.unpack_from("<H", guid)[0]
        if valid_bits > bits:
            raise AudioFormatError(
                "bad_header", f"{valid_bits} valid bits do not fit {bits}-bit samples"
            )
        # Fewer valid bits (20 in a 24-bit container) are left-justified: read as the container.
    return _Format(tag, channels, rate, block_align, bits)


def _encoding(fmt: _Format) -> _Encoding:
    """The sample encoding of a header, or the precise reason it is not accepted."""
    found = ENCODINGS.get((fmt.tag, fmt.bits))
    if found is None:
        if any(tag == fmt.tag for tag, _bits in ENCODINGS):
            kind = {_FORMAT_FLOAT: "floating-point", _FORMAT_ALAW: "A-law", _FORMAT_MULAW: "µ-law"}
            raise AudioFormatError(
                "unsupported_bit_depth",
                f"{fmt.bits}-bit {kind.get(fmt.tag, 'PCM')}; accepted: {_ACCEPTED}",
            )
        raise AudioFormatError(
            "compressed_format", f"{_format_name(fmt.tag)}; accepted: {_ACCEPTED}"
        )
    if fmt.channels < 1:
        raise AudioFormatError("bad_header", "the header says the file has no channels")
    if fmt.block_align != found.bytes_per_sample * fmt.channels:
        raise AudioFormatError(
            "bad_header",
            f"block align {fmt.block_align} does not match {fmt.channels} channel(s) of "
            f"{found.name}",
        )
    if not MIN_SAMPLE_RATE <= fmt.sample_rate <= MAX_SAMPLE_RATE:
        raise AudioFormatError(
            "unsupported_sample_rate",
            f"sample rate {fmt.sample_rate} Hz; {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz accepted",
        )
    return found


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
    encoding: _Encoding | None = None
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
            encoding = _encoding(fmt)
        elif chunk_id == b"data":
            if fmt is None or encoding is None:
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
            samples = encoding.decode(data[body_start : body_start + size])
            return PcmAudio(samples.reshape(-1, fmt.channels), sample_rate=fmt.sample_rate)
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
