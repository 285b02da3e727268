"""G.711 µ-law and A-law coding and 20 ms framing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.typing import NDArray

from openivr.audio import g711

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def snr_db(reference: NDArray[np.int16], decoded: NDArray[np.int16]) -> float:
    signal = np.sum(reference.astype(np.float64) ** 2)
    noise = np.sum((reference.astype(np.float64) - decoded) ** 2)
    return float(10 * np.log10(signal / noise))


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
@pytest.mark.parametrize("level", [0.9, 0.1, 0.01])
def test_tone_survives_round_trip_above_30_db(codec: g711.Codec, level: float) -> None:
    t = np.arange(8000) / 8000
    pcm = np.round(level * 32767 * np.sin(2 * np.pi * 1004 * t)).astype(np.int16)
    decoded = g711.decode(g711.encode(pcm, codec), codec)
    assert snr_db(pcm, decoded) > 30


def test_codes_match_the_reference_implementation_for_every_sample() -> None:
    # The stdlib's audioop (CPython's C port of the G.711 reference) is an independent oracle.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    raw = ALL_SAMPLES.tobytes()
    assert g711.ulaw_encode(ALL_SAMPLES).tobytes() == audioop.lin2ulaw(raw, 2)
    assert g711.alaw_encode(ALL_SAMPLES).tobytes() == audioop.lin2alaw(raw, 2)
    codes = bytes(range(256))
    assert g711.ulaw_decode(codes).tobytes() == audioop.ulaw2lin(codes, 2)
    assert g711.alaw_decode(codes).tobytes() == audioop.alaw2lin(codes, 2)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_zero_encodes_to_the_silence_code(codec: g711.Codec) -> None:
    encoded = g711.encode(np.zeros(4, dtype=np.int16), codec)
    assert encoded == bytes([g711.silence_code(codec)]) * 4
    # A-law has no zero level: its silence decodes to the smallest step, +8.
    assert np.abs(g711.decode(encoded, codec)).max() <= 8


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_decode_then_encode_is_identity_on_codes(codec: g711.Codec) -> None:
    codes = bytes(range(256))
    reencoded = g711.encode(g711.decode(codes, codec), codec)
    # µ-law has two zeros (0x7F and 0xFF); both decode to 0 and come back as 0xFF.
    differing = [c for c, r in zip(codes, reencoded, strict=True) if c != r]
    assert differing == ([0x7F] if codec == "PCMU" else [])


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_frames_are_160_bytes_and_last_is_padded_with_silence(codec: g711.Codec) -> None:
    pcm = np.full(400, 1000, dtype=np.int16)  # 2.5 frames
    frames = g711.encode_frames(pcm, codec)
    assert [len(f) for f in frames] == [160, 160, 160]
    assert frames[2][80:] == bytes([g711.silence_code(codec)]) * 80
    assert frames[2][:80] == g711.encode(pcm[:80], codec)


def test_exact_multiple_of_a_frame_gets_no_extra_frame() -> None:
    assert len(g711.encode_frames(np.zeros(320, dtype=np.int16), "PCMU")) == 2


def test_unknown_codec_and_wrong_dtype_are_named() -> None:
    with pytest.raises(ValueError, match="G722"):
        g711.encode(np.zeros(4, dtype=np.int16), "G722")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float64"):
        g711.ulaw_encode(np.zeros(4))  # type: ignore[arg-type]


@pytest.mark.parametrize(("source", "target"), [("PCMA", "PCMU"), ("PCMU", "PCMA")])
def test_transcoding_is_decoding_then_encoding_in_the_other_law(
    source: g711.Codec, target: g711.Codec
) -> None:
    every_code = bytes(range(256))
    expected = g711.encode(g711.decode(every_code, source), target)
    assert g711.transcode(every_code, source, target) == expected
    assert g711.transcode(every_code, source, source) == every_code
