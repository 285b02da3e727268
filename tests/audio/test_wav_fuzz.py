"""Whatever bytes arrive as an upload, the answer is audio or a named AudioFormatError."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from openivr.audio.normalise import normalise
from openivr.audio.wav import AudioFormatError, PcmAudio, parse_wav, write_wav

VALID = write_wav((np.sin(np.arange(400) / 3) * 8000).astype(np.int16), 16000)


def accepted_or_named(data: bytes) -> PcmAudio | None:
    try:
        return parse_wav(data)
    except AudioFormatError as error:
        assert error.code and error.detail
        return None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    accepted_or_named(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_chunks_after_a_riff_header_never_crash(tail: bytes) -> None:
    accepted_or_named(b"RIFF" + struct.pack("<I", len(tail) + 4) + b"WAVE" + tail)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=6
    ),
    st.integers(0, len(VALID)),
)
def test_mutated_and_cut_wav_files_never_crash(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(VALID)
    for offset, value in edits:
        data[offset] = value
    audio = accepted_or_named(bytes(data[:cut]))
    if audio is not None and audio.samples.any():
        try:
            normalise(audio)
        except AudioFormatError as error:
            assert error.code == "silent_audio"
