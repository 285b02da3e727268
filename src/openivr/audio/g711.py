"""G.711 µ-law (PCMU) and A-law (PCMA) coding, vectorised with lookup tables, and 20 ms framing."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

Codec = Literal["PCMU", "PCMA"]

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz: one RTP packet
ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5

_ULAW_BIAS = 0x21  # on the 14-bit scale
_ULAW_CLIP = 8158  # 8159 + bias would reach a 9th segment; G.711 clips to the top code


def _ulaw_encode_exact(pcm: NDArray[np.int32]) -> NDArray[np.uint8]:
    """µ-law of 16-bit samples per G.711 on the 14-bit value (segment = top bit position)."""
    # Shift first (flooring negatives) so codes match the classic G.711 reference bit for bit.
    value = pcm >> 2
    sign = np.where(value < 0, 0x80, 0).astype(np.int32)
    magnitude = np.minimum(np.abs(value), _ULAW_CLIP) + _ULAW_BIAS
    # Segment 0..7: the top set bit of magnitude >> 5 (magnitude is at least 0x21, below 0x2000).
    exponent = np.floor(np.log2(magnitude >> 5)).astype(np.int32)
    mantissa = (magnitude >> (exponent + 1)) & 0x0F
    codes: NDArray[np.uint8] = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)
    return codes


def _ulaw_decode_exact(codes: NDArray[np.int32]) -> NDArray[np.int16]:
    inverted = ~codes & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    # Back on the 16-bit scale, where the bias is 0x84.
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(inverted & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_encode_exact(pcm: NDArray[np.int32]) -> NDArray[np.uint8]:
    """A-law of 16-bit samples per G.711 (13-bit magnitude, even bits inverted)."""
    value = pcm >> 3
    positive = value >= 0
    mask = np.where(positive, 0xD5, 0x55)
    magnitude = np.where(positive, value, -value - 1)
    # Segment = number of bits above the 5 that segment 0 holds, capped at 7 (clipping).
    segment = np.zeros_like(magnitude)
    nonzero = magnitude > 0x1F
    segment[nonzero] = np.floor(np.log2(magnitude[nonzero])).astype(np.int32) - 4
    clipped = segment >= 8
    shift = np.where(segment < 2, 1, segment)
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F)
    code = np.where(clipped, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _alaw_decode_exact(codes: NDArray[np.int32]) -> NDArray[np.int16]:
    value = codes ^ 0x55
    mantissa = (value & 0x0F) << 4
    segment = (value & 0x70) >> 4
    magnitude = np.where(
        segment == 0, mantissa + 8, (mantissa + 0x108) << np.maximum(segment - 1, 0)
    )
    return np.where(value & 0x80, magnitude, -magnitude).astype(np.int16)


# Tables indexed by the int16 sample viewed as uint16 (encode) or by the code byte (decode).
_ALL_SAMPLES = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
_ALL_CODES = np.arange(256, dtype=np.int32)
_ULAW_ENCODE = _ulaw_encode_exact(_ALL_SAMPLES)
_ALAW_ENCODE = _alaw_encode_exact(_ALL_SAMPLES)
_ULAW_DECODE = _ulaw_decode_exact(_ALL_CODES)
_ALAW_DECODE = _alaw_decode_exact(_ALL_CODES)


def _as_int16(pcm: NDArray[np.int16]) -> NDArray[np.int16]:
    array = np.asarray(pcm)
    if array.dtype != np.int16:
        raise TypeError(f"G.711 encodes int16 samples, got {array.dtype}")
    return array.reshape(-1)


def ulaw_encode(pcm: NDArray[np.int16]) -> NDArray[np.uint8]:
    """µ-law codes of int16 samples."""
    return _ULAW_ENCODE[_as_int16(pcm).view(np.uint16)]


def ulaw_decode(codes: NDArray[np.uint8] | bytes) -> NDArray[np.int16]:
    """int16 samples of µ-law codes."""
    return _ULAW_DECODE[np.frombuffer(codes, dtype=np.uint8)]


def alaw_encode(pcm: NDArray[np.int16]) -> NDArray[np.uint8]:
    """A-law codes of int16 samples."""
    return _ALAW_ENCODE[_as_int16(pcm).view(np.uint16)]


def alaw_decode(codes: NDArray[np.uint8] | bytes) -> NDArray[np.int16]:
    """int16 samples of A-law codes."""
    return _ALAW_DECODE[np.frombuffer(codes, dtype=np.uint8)]


def encode(pcm: NDArray[np.int16], codec: Codec) -> bytes:
    """G.711 bytes of int16 8 kHz samples in the named RTP codec."""
    if codec == "PCMU":
        return ulaw_encode(pcm).tobytes()
    if codec == "PCMA":
        return alaw_encode(pcm).tobytes()
    raise ValueError(f"unknown G.711 codec {codec!r}; use PCMU or PCMA")


def decode(payload: bytes, codec: Codec) -> NDArray[np.int16]:
    """int16 samples of G.711 bytes in the named RTP codec."""
    if codec == "PCMU":
        return ulaw_decode(payload)
    if codec == "PCMA":
        return alaw_decode(payload)
    raise ValueError(f"unknown G.711 codec {codec!r}; use PCMU or PCMA")


def silence_code(codec: Codec) -> int:
    """The code byte of a zero sample in the named codec."""
    if codec == "PCMU":
        return ULAW_SILENCE
    if codec == "PCMA":
        return ALAW_SILENCE
    raise ValueError(f"unknown G.711 codec {codec!r}; use PCMU or PCMA")


def split_frames(payload: bytes, codec: Codec) -> list[bytes]:
    """Cut G.711 bytes into 20 ms frames of 160 bytes, padding the last with silence."""
    remainder = len(payload) % FRAME_SAMPLES
    if remainder:
        payload = payload + bytes([silence_code(codec)]) * (FRAME_SAMPLES - remainder)
    return [payload[i : i + FRAME_SAMPLES] for i in range(0, len(payload), FRAME_SAMPLES)]


def encode_frames(pcm: NDArray[np.int16], codec: Codec) -> list[bytes]:
    """int16 8 kHz samples as 20 ms G.711 frames (160 bytes each) ready for RTP."""
    return split_frames(encode(pcm, codec), codec)


# Byte-to-byte tables from one law to the other (`bytes.translate`): a packet in the other codec
# is re-coded in one pass, without decoding to samples first.
_TRANSCODE: dict[tuple[Codec, Codec], bytes] = {
    ("PCMA", "PCMU"): ulaw_encode(_ALAW_DECODE).tobytes(),
    ("PCMU", "PCMA"): alaw_encode(_ULAW_DECODE).tobytes(),
}


def transcode(payload: bytes, source: Codec, target: Codec) -> bytes:
    """G.711 bytes in `source` re-coded in `target` (the same bytes when they agree)."""
    if source == target:
        return payload
    return payload.translate(_TRANSCODE[(source, target)])
