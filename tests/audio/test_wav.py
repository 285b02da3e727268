"""Reading uploaded WAV files: what is accepted, and the precise reason for what is not."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from openivr.audio import g711
from openivr.audio.wav import MAX_UPLOAD_BYTES, AudioFormatError, PcmAudio, parse_wav, write_wav


def riff(fmt_body: bytes, data: bytes, data_size: int | None = None, extra: bytes = b"") -> bytes:
    """A RIFF/WAVE file with a fmt chunk, optional extra chunks, then a data chunk."""
    size = len(data) if data_size is None else data_size
    chunks = b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body + extra
    chunks += b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def fmt(tag: int, channels: int, rate: int, bits: int) -> bytes:
    block = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)


def extensible(subformat: int, channels: int, rate: int, bits: int, valid_bits: int) -> bytes:
    guid = struct.pack("<H", subformat) + bytes.fromhex("000000001000800000aa00389b71")
    return fmt(0xFFFE, channels, rate, bits) + struct.pack("<HHI", 22, valid_bits, 3) + guid


def test_mono_pcm_reads_back_the_samples_written() -> None:
    samples = np.array([0, 1000, -1000, 32767, -32768], dtype=np.int16)
    audio = parse_wav(write_wav(samples, 16000))
    assert audio.sample_rate == 16000
    assert audio.samples.shape == (5, 1)
    assert audio.samples[:, 0].tolist() == samples.tolist()


def test_stereo_pcm_keeps_channels_apart() -> None:
    interleaved = np.array([1, -1, 2, -2, 3, -3], dtype="<i2").tobytes()
    audio = parse_wav(riff(fmt(1, 2, 44100, 16), interleaved))
    assert audio.channels == 2
    assert audio.samples[:, 0].tolist() == [1, 2, 3]
    assert audio.samples[:, 1].tolist() == [-1, -2, -3]


def test_extensible_pcm_is_pcm() -> None:
    data = np.arange(8, dtype="<i2").tobytes()
    audio = parse_wav(riff(extensible(1, 2, 48000, 16, 16), data))
    assert audio.samples.shape == (4, 2) and audio.sample_rate == 48000


def test_unknown_chunks_and_odd_padding_are_skipped() -> None:
    extra = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\0"  # odd chunk padded to even
    audio = parse_wav(riff(fmt(1, 1, 8000, 16), b"\x01\x00\x02\x00", extra=extra))
    assert audio.samples[:, 0].tolist() == [1, 2]


def test_duration_counts_frames_not_samples() -> None:
    audio = PcmAudio(np.zeros((22050, 2), dtype=np.int16), 22050)
    assert audio.duration == pytest.approx(1.0)


REJECTED = {
    "12-bit": (riff(fmt(1, 1, 8000, 12), b"\0" * 300), "unsupported_bit_depth", "12-bit PCM"),
    "16-bit float": (
        riff(fmt(3, 1, 8000, 16), b"\0" * 400),
        "unsupported_bit_depth",
        "16-bit floating-point",
    ),
    "16-bit A-law": (riff(fmt(6, 1, 8000, 16), b"\0" * 100), "unsupported_bit_depth", "A-law"),
    "GSM": (riff(fmt(0x31, 1, 8000, 0), b"\0" * 100), "compressed_format", "GSM 6.10 WAV"),
    "valid bits beyond the container": (
        riff(extensible(1, 1, 8000, 16, 24), b"\0" * 300),
        "bad_header",
        "24 valid bits",
    ),
    "MP3": (riff(fmt(0x55, 1, 8000, 0), b"\0" * 100), "compressed_format", "MP3 WAV"),
    "block align of 16 bits for 24-bit": (
        riff(struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 24), b"\0" * 6),
        "bad_header",
        "block align 2",
    ),
    "truncated": (
        riff(fmt(1, 1, 8000, 16), b"\0" * 100, data_size=1000),
        "truncated",
        "announces 1000 bytes but only 100",
    ),
    "half frame": (riff(fmt(1, 2, 8000, 16), b"\0" * 6), "truncated", "middle of a sample frame"),
    "empty": (riff(fmt(1, 1, 8000, 16), b""), "empty_audio", "no audio samples"),
    "no data chunk": (
        b"RIFF"
        + struct.pack("<I", 28)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt(1, 1, 8000, 16),
        "empty_audio",
        "no data chunk",
    ),
    "not RIFF": (b"ID3\x03\x00" + b"\0" * 200, "not_wav", "not a WAV file"),
    "RIFF but not WAVE": (b"RIFF\x10\0\0\0AVI LIST", "not_wav", "not a WAV file"),
    "short fmt": (riff(b"\x01\x00\x01\x00", b"\0\0"), "bad_header", "fmt chunk is 4 bytes"),
    "data before fmt": (
        b"RIFF" + struct.pack("<I", 14) + b"WAVE" + b"data" + struct.pack("<I", 2) + b"\0\0",
        "bad_header",
        "before the fmt chunk",
    ),
    "bad block align": (
        riff(struct.pack("<HHIIHH", 1, 2, 8000, 32000, 2, 16), b"\0" * 8),
        "bad_header",
        "block align 2",
    ),
    "rate too low": (riff(fmt(1, 1, 4000, 16), b"\0" * 8), "unsupported_sample_rate", "4000 Hz"),
    "rate too high": (
        riff(fmt(1, 1, 96000, 16), b"\0" * 8),
        "unsupported_sample_rate",
        "96000 Hz",
    ),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_rejected_upload_names_its_problem(case: str) -> None:
    data, code, words = REJECTED[case]
    with pytest.raises(AudioFormatError) as caught:
        parse_wav(data)
    assert caught.value.code == code
    assert words in caught.value.detail


def test_upload_over_ten_megabytes_is_refused_before_parsing() -> None:
    data = write_wav(np.zeros(MAX_UPLOAD_BYTES // 2, dtype=np.int16), 48000)
    assert len(data) > MAX_UPLOAD_BYTES
    with pytest.raises(AudioFormatError) as caught:
        parse_wav(data)
    assert caught.value.code == "file_too_large"
    assert "10 MB" in caught.value.detail


def test_upload_just_under_ten_megabytes_is_accepted() -> None:
    frames = (MAX_UPLOAD_BYTES - 44) // 2
    audio = parse_wav(write_wav(np.ones(frames, dtype=np.int16), 48000))
    assert audio.samples.shape == (frames, 1)


def test_written_wav_is_readable_by_the_stdlib() -> None:
    import io
    import wave

    samples = (np.sin(np.arange(800) / 5) * 10000).astype(np.int16)
    with wave.open(io.BytesIO(write_wav(samples, 8000))) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 8000)
        assert np.frombuffer(reader.readframes(800), dtype="<i2").tolist() == samples.tolist()


# The same five samples in every accepted encoding, and the 16-bit values each becomes.
EXPECTED_16 = [0, 16384, -16384, 32767, -32768]


def _pcm24(values: list[int]) -> bytes:
    return b"".join((v << 8).to_bytes(4, "little", signed=True)[:3] for v in values)


_ULAW = g711.ulaw_encode(np.array(EXPECTED_16, dtype=np.int16))
_ALAW = g711.alaw_encode(np.array(EXPECTED_16, dtype=np.int16))
ACCEPTED = {
    "8-bit PCM (unsigned)": (
        fmt(1, 1, 8000, 8),
        bytes([128, 192, 64, 255, 0]),
        [0, 16384, -16384, 32512, -32768],
    ),
    "24-bit PCM": (fmt(1, 1, 8000, 24), _pcm24(EXPECTED_16), EXPECTED_16),
    "24-bit PCM, extensible with 20 valid bits": (
        extensible(1, 1, 8000, 24, 20),
        _pcm24(EXPECTED_16),
        EXPECTED_16,
    ),
    "32-bit PCM": (
        fmt(1, 1, 8000, 32),
        np.array([v << 16 | 0x7FFF for v in EXPECTED_16], dtype="<i4").tobytes(),
        EXPECTED_16,
    ),
    "32-bit float": (
        fmt(3, 1, 8000, 32),
        np.array([0.0, 0.5, -0.5, 1.0, -1.5], dtype="<f4").tobytes(),
        [0, 16384, -16384, 32767, -32767],
    ),
    "32-bit float, extensible": (
        extensible(3, 1, 8000, 32, 32),
        np.array([0.0, 0.5, -0.5, 1.0, -1.0], dtype="<f4").tobytes(),
        [0, 16384, -16384, 32767, -32767],
    ),
    "64-bit float with a NaN": (
        fmt(3, 1, 8000, 64),
        np.array([float("nan"), 0.5, -0.5, 2.0, -1.0], dtype="<f8").tobytes(),
        [0, 16384, -16384, 32767, -32767],
    ),
    # G.711 codes through the codec tables the calls use (tested bit-exactly in test_g711.py).
    "µ-law": (
        fmt(7, 1, 8000, 8),
        _ULAW.tobytes(),
        g711.ulaw_decode(_ULAW).tolist(),
    ),
    "A-law": (
        fmt(6, 1, 8000, 8),
        _ALAW.tobytes(),
        g711.alaw_decode(_ALAW).tolist(),
    ),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_accepted_encodings_become_16_bit_pcm(case: str) -> None:
    header, raw, expected = ACCEPTED[case]
    audio = parse_wav(riff(header, raw))
    assert audio.sample_rate == 8000 and audio.samples.dtype == np.int16
    assert audio.samples[:, 0].tolist() == expected


def test_stereo_24_bit_keeps_channels_apart() -> None:
    left, right = [100, 200, 300], [-100, -200, -300]
    interleaved = [v for pair in zip(left, right, strict=True) for v in pair]
    audio = parse_wav(riff(fmt(1, 2, 8000, 24), _pcm24(interleaved)))
    assert audio.samples[:, 0].tolist() == left and audio.samples[:, 1].tolist() == right
