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


def run_stream(buffer: JitterBuffer, seqs: list[int], ssrc: int = 7) -> list[bytes]:
    """`run` with each packet's SSRC and its timestamp (20 ms a sequence number)."""
    out: list[bytes] = []
    for s in seqs:
        out += buffer.push(s, frame(s), ssrc=ssrc, timestamp=s * 160)
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


def test_a_new_ssrc_restarts_the_stream_with_nothing_lost() -> None:
    # A phone restarts its stream (re-INVITE, hold/resume): new SSRC, numbers from near 0,
    # while the old stream had not got that far. Nothing is "late", no silence goes between.
    buffer = JitterBuffer(SILENCE, depth=3)
    out: list[bytes] = []
    for s in range(100, 140):
        out += buffer.push(s, frame(s), ssrc=1, timestamp=s * 160)
    for s in range(5, 45):
        out += buffer.push(s, frame(s + 1), ssrc=2, timestamp=s * 160)
    out += buffer.push(139, frame(139), ssrc=1, timestamp=139 * 160)  # a straggler of the old
    out += buffer.flush()
    assert out == [frame(s) for s in range(100, 140)] + [frame(s + 1) for s in range(5, 45)]
    assert buffer.lost == 0
    assert buffer.late == 1


def test_reordering_across_a_new_ssrc_is_kept_in_the_new_stream() -> None:
    buffer = JitterBuffer(SILENCE, depth=2)
    out = buffer.push(10, frame(10), ssrc=1) + buffer.push(11, frame(11), ssrc=1)
    for s in [3, 5, 4, 6]:
        out += buffer.push(s, frame(s), ssrc=2)
    out += buffer.flush()
    assert out == [frame(10), frame(11), frame(3), frame(4), frame(5), frame(6)]
    assert buffer.lost == 0


def test_same_ssrc_restart_is_seen_by_its_timestamp() -> None:
    # Numbers go back within MAX_GAP but the timestamp goes on: not a late packet, a restart.
    buffer = JitterBuffer(SILENCE, depth=2)
    out: list[bytes] = []
    for index, s in enumerate([*range(200, 230), *range(150, 180)]):
        out += buffer.push(s, frame(s), ssrc=7, timestamp=1000 + index * 160)
    out += buffer.flush()
    assert out == [frame(s) for s in [*range(200, 230), *range(150, 180)]]
    assert buffer.lost == 0 and buffer.late == 0


def test_late_and_repeated_packets_with_timestamps_are_still_late() -> None:
    buffer = JitterBuffer(SILENCE, depth=1)
    out = run_stream(buffer, [1, 2, 3, 4, 2, 4, 5], ssrc=9)
    assert out == [frame(n) for n in range(1, 6)]
    assert buffer.late == 2


def test_a_long_forward_jump_in_one_stream_loses_nothing_and_adds_no_silence() -> None:
    buffer = JitterBuffer(SILENCE, depth=3)
    seqs = [*range(1, 20), *range(1020, 1040)]
    out = run_stream(buffer, seqs, ssrc=3)
    assert out == [frame(s) for s in seqs]


def test_key_events_after_a_restart_are_skipped_in_the_new_stream() -> None:
    buffer = JitterBuffer(SILENCE, depth=2)
    out = buffer.push(500, frame(500), ssrc=1) + buffer.push(501, frame(501), ssrc=1)
    for s in range(1, 12):
        out += buffer.skip(s, ssrc=2) if s % 2 == 0 else buffer.push(s, frame(s), ssrc=2)
    out += buffer.flush()
    assert out == [frame(500), frame(501), *[frame(n) for n in range(1, 12, 2)]]
    assert buffer.lost == 0


def test_a_late_audio_packet_after_key_events_is_late_not_a_restart() -> None:
    # Only events followed audio 1 (a phone may stop its audio while a key is held): audio 3
    # arriving after them is older than they are, though newer than the last audio seen.
    buffer = JitterBuffer(SILENCE, depth=2)
    out = buffer.push(1, frame(1), ssrc=4, timestamp=160)
    for s in [2, 4, 5, 6, 7, 8]:
        out += buffer.skip(s, ssrc=4)
    out += buffer.push(3, frame(3), ssrc=4, timestamp=480)
    out += buffer.push(9, frame(9), ssrc=4, timestamp=1440) + buffer.flush()
    assert out == [frame(1), SILENCE, frame(9)]
    assert buffer.late == 1


def test_a_stream_gone_back_in_the_same_ssrc_is_a_restart() -> None:
    # Numbers and timestamps go back together by 100 (2 s): no single packet tells it from a
    # very late one, a run of them in a row with nothing newer between does.
    buffer = JitterBuffer(SILENCE, depth=2)
    seqs = [*range(200, 230), *range(130, 160)]
    out = run_stream(buffer, seqs)
    assert out == [frame(s) for s in seqs]
    assert buffer.lost == 0 and buffer.late == 0


def test_very_late_packets_among_newer_ones_stay_late() -> None:
    buffer = JitterBuffer(SILENCE, depth=2)
    seqs = [*range(100, 140), 60, 140, 61, 141, 62, 142, 63, 143]
    out = run_stream(buffer, seqs)
    assert out == [frame(s) for s in range(100, 144)]
    assert buffer.late == 4
