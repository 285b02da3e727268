"""Jitter buffer: order, loss and wrap-around."""

from __future__ import annotations

from openivr.sip.jitterbuffer import JitterBuffer

SILENCE = b"\xff" * 2


def frame(n: int) -> bytes:
    return bytes([n % 256, 0])


def run(buffer: JitterBuffer, seqs: list[int]) -> list[bytes]:
    out: list[bytes] = []
    for s in seqs:
        out += buffer.push(s & 0xFFFF, frame(s))
    return out + buffer.flush()


def test_reorders_late_packets() -> None:
    out = run(JitterBuffer(SILENCE, depth=3), [1, 3, 2, 5, 4, 6])
    assert out == [frame(n) for n in range(1, 7)]


def test_fills_losses_with_silence() -> None:
    buffer = JitterBuffer(SILENCE, depth=2)
    out = run(buffer, [10, 11, 14, 15, 16])
    assert out == [frame(10), frame(11), SILENCE, SILENCE, frame(14), frame(15), frame(16)]
    assert buffer.lost == 2


def test_sequence_wrap() -> None:
    out = run(JitterBuffer(SILENCE, depth=2), [65533, 65534, 65536, 65535, 65537])
    assert out == [frame(n) for n in range(65533, 65538)]


def test_too_late_and_duplicates_are_dropped() -> None:
    buffer = JitterBuffer(SILENCE, depth=1)
    out = run(buffer, [1, 2, 3, 4, 2, 4, 5])
    assert out == [frame(n) for n in range(1, 6)]
    assert buffer.late == 2


def test_restart_after_big_jump_does_not_fill_thousands_of_frames() -> None:
    out = run(JitterBuffer(SILENCE, depth=1), [1, 2, 30000, 30001])
    assert out == [frame(1), frame(2), frame(30000), frame(30001)]


def test_key_events_between_audio_packets_are_no_loss() -> None:
    # A phone holding a key sends an RFC 4733 event between every two audio packets, in the
    # same sequence numbers: their places are no gap in the audio to fill with silence.
    buffer = JitterBuffer(SILENCE, depth=2)
    out: list[bytes] = []
    for s in range(1, 12):
        out += buffer.skip(s) if s % 2 == 0 else buffer.push(s, frame(s))
    out += buffer.flush()
    assert out == [frame(n) for n in range(1, 12, 2)]
    assert buffer.lost == 0
