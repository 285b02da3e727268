"""RTP sessions and the bridge relay over real loopback sockets."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import struct
import sys
import time
import weakref
from pathlib import Path
from typing import Any

import pytest

from openivr import loopwatch
from openivr.audio import g711
from openivr.sip.audiofilter import AUDIO_SAMPLE
from openivr.sip.bridge import MediaBridge
from openivr.sip.clock import MediaClock
from openivr.sip.media import RtpSession
from openivr.sip.rtp import RtpPacket

Addr = tuple[str, int]


class Peer:
    """A plain UDP socket playing a phone's RTP side."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)

    @property
    def addr(self) -> Addr:
        host, port = self.sock.getsockname()
        return str(host), int(port)

    def send(self, session: RtpSession, seq: int, *, ssrc: int = 0x1234, pt: int = 8) -> None:
        header = struct.pack("!BBHII", 0x80, pt, seq, 1000 + seq * 160, ssrc)
        self.sock.sendto(header + bytes([seq % 256]) * 160, ("127.0.0.1", session.local_port))

    async def receive(self, count: int) -> list[RtpPacket]:
        loop = asyncio.get_running_loop()
        packets = []
        for _ in range(count):
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 2048), 5)
            packets.append(RtpPacket.parse(data))
        return packets

    def close(self) -> None:
        self.sock.close()


def _ignore(packet: RtpPacket) -> None:
    pass


async def _session(remote: Addr, codec: g711.Codec = "PCMA", pt: int = 8) -> RtpSession:
    session = RtpSession(codec, pt, 101, remote, _ignore, _ignore)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    await session.open(sock)
    return session


async def _bridge(
    caller_peer: Peer, target_peer: Peer, target_codec: g711.Codec = "PCMA"
) -> tuple[RtpSession, RtpSession]:
    caller = await _session(caller_peer.addr)
    target = await _session(target_peer.addr, target_codec, 0 if target_codec == "PCMU" else 8)
    MediaBridge(caller, target).connect()
    return caller, target


async def test_relay_keeps_our_stream_continuous_across_a_new_source() -> None:
    caller_peer, target_peer = Peer(), Peer()
    caller, target = await _bridge(caller_peer, target_peer)
    for seq in range(3):
        caller_peer.send(caller, seq)
    first = await target_peer.receive(3)
    for seq in range(3):
        caller_peer.send(caller, 500 + seq, ssrc=0x9999)  # the caller's phone restarts its stream
    second = await target_peer.receive(3)
    packets = first + second
    assert [p.sequence for p in packets] == [(packets[0].sequence + i) & 0xFFFF for i in range(6)]
    assert {p.ssrc for p in packets} == {target.ssrc}
    assert [p.timestamp - packets[0].timestamp for p in packets] == [i * 160 for i in range(6)]
    assert [p.marker for p in packets] == [True, False, False, True, False, False]
    assert [p.payload[0] for p in packets] == [0, 1, 2, 500 % 256, 501 % 256, 502 % 256]
    assert caller.stats.packets_received == 6
    assert target.stats.packets_sent == 6
    caller.close()
    target.close()
    caller_peer.close()
    target_peer.close()


async def test_relay_answers_where_the_media_comes_from_and_follows_a_move() -> None:
    caller_peer, target_peer, moved = Peer(), Peer(), Peer()
    caller, target = await _bridge(caller_peer, target_peer)
    caller.remote = ("127.0.0.1", 9)  # what the SDP said; the media comes from elsewhere
    caller_peer.send(caller, 1)
    await target_peer.receive(1)
    target_peer.send(target, 1)
    assert len(await caller_peer.receive(1)) == 1
    assert caller.remote == caller_peer.addr
    moved.send(caller, 2)  # the caller's NAT binding changed
    await target_peer.receive(1)
    target_peer.send(target, 2)
    assert len(await moved.receive(1)) == 1
    assert caller.remote == moved.addr
    for item in (caller, target, caller_peer, target_peer, moved):
        item.close()


async def test_packets_queued_while_the_loop_was_busy_are_all_relayed_in_order() -> None:
    caller_peer, target_peer = Peer(), Peer()
    caller, target = await _bridge(caller_peer, target_peer)
    for seq in range(20):  # all queued before the loop gets to read any
        caller_peer.send(caller, seq)
    packets = await target_peer.receive(20)
    assert [p.payload[0] for p in packets] == list(range(20))
    assert caller.stats.packets_received == 20
    for item in (caller, target, caller_peer, target_peer):
        item.close()


async def test_relay_transcodes_only_between_different_codecs() -> None:
    caller_peer, target_peer = Peer(), Peer()
    caller, target = await _bridge(caller_peer, target_peer, target_codec="PCMU")
    caller_peer.send(caller, 7)
    (packet,) = await target_peer.receive(1)
    sent = bytes([7]) * 160
    assert packet.payload_type == 0
    assert packet.payload == g711.encode(g711.decode(sent, "PCMA"), "PCMU")
    assert packet.payload != sent
    for item in (caller, target, caller_peer, target_peer):
        item.close()


async def test_relay_passes_telephone_events_under_the_sinks_event_type() -> None:
    caller_peer, target_peer = Peer(), Peer()
    caller, target = await _bridge(caller_peer, target_peer)
    caller_peer.send(caller, 1, pt=101)
    (packet,) = await target_peer.receive(1)
    assert packet.payload_type == 101
    for item in (caller, target, caller_peer, target_peer):
        item.close()


async def test_unbridged_session_hands_audio_to_the_call_and_latches() -> None:
    peer = Peer()
    heard: asyncio.Queue[RtpPacket] = asyncio.Queue()
    session = RtpSession("PCMA", 8, 101, ("127.0.0.1", 9), heard.put_nowait, _ignore)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    await session.open(sock)
    peer.send(session, 3)
    packet = await asyncio.wait_for(heard.get(), 5)
    assert packet.sequence == 3
    assert session.remote == peer.addr
    session.close()
    peer.close()


async def test_receive_timestamps_give_arrival_intervals_and_relay_latency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(RtpSession, "receive_timestamps", True)
    caller_peer, target_peer = Peer(), Peer()
    caller, target = await _bridge(caller_peer, target_peer)
    for seq in range(4):
        caller_peer.send(caller, seq)
        await target_peer.receive(1)
    assert len(caller.stats.arrival_intervals) == 3
    assert len(caller.stats.relay_latencies) == 4
    assert all(latency >= 0 for latency in caller.stats.relay_latencies)
    assert not target.stats.relay_latencies  # nothing came from the target
    for item in (caller, target, caller_peer, target_peer):
        item.close()


async def test_a_send_that_fails_drops_the_packet_and_is_counted() -> None:
    caller_peer = Peer()
    session = await _session(caller_peer.addr)
    session.remote = ("::1", 4000)  # IPv6 from an IPv4 socket: the kernel refuses
    session.forward(8, bytes(160), False, 0)
    assert session.stats.send_errors == 1
    assert session.stats.packets_sent == 0
    session.remote = caller_peer.addr
    session.forward(8, bytes(160), False, 160)
    assert len(await caller_peer.receive(1)) == 1
    session.close()
    caller_peer.close()


async def test_closed_session_frees_its_port() -> None:
    session = await _session(("127.0.0.1", 9))
    port = session.local_port
    session.close()
    session.close()  # twice is harmless
    again = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    again.bind(("127.0.0.1", port))
    again.close()


async def test_a_failing_handler_does_not_stop_other_calls_media(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken_peer, caller_peer, target_peer = Peer(), Peer(), Peer()
    broken = await _session(broken_peer.addr)

    def fail(data: bytes, addr: tuple[str, int]) -> bool:
        raise RuntimeError("broken relay")

    broken.relay = fail
    caller, target = await _bridge(caller_peer, target_peer)
    for seq in range(3):
        broken_peer.send(broken, seq)
        caller_peer.send(caller, seq)
    assert [p.payload[0] for p in await target_peer.receive(3)] == [0, 1, 2]
    for item in (broken, caller, target, broken_peer, caller_peer, target_peer):
        item.close()


async def test_a_new_session_receives_after_another_closed() -> None:
    first_peer = Peer()
    first = await _session(first_peer.addr)
    first.forward(8, bytes(160), False, 0)
    await first_peer.receive(1)
    first.close()
    caller_peer, target_peer = Peer(), Peer()
    caller, target = await _bridge(caller_peer, target_peer)
    caller_peer.send(caller, 1)
    assert len(await target_peer.receive(1)) == 1
    for item in (caller, target, first_peer, caller_peer, target_peer):
        item.close()


async def test_a_late_tick_is_counted_and_warned_about_naming_the_request_that_ran(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peer = Peer()
    session = await _session(peer.addr)
    # Every late tick warns here: on a busy machine a tick may run late before the stall, and
    # the usual one warning a second would then hide the one this test causes.
    clock = MediaClock(warn_every=0.0)
    clock.add(session)
    await peer.receive(2)
    late_before = clock.late_ticks
    # A request that holds the loop for 60 ms: at least the tick due meanwhile runs 40 ms late.
    token = loopwatch.activity.request_started("POST /oauth/token")
    with caplog.at_level(logging.WARNING, logger="openivr.sip.clock"):
        time.sleep(0.060)
        loopwatch.activity.request_ended(token)
        await peer.receive(3)
    assert clock.late_ticks > late_before
    assert clock.lag_max >= 0.040
    assert clock.lag_buckets[-1] == clock.lag_count  # the last bucket counts every tick
    warnings = [r.getMessage() for r in caplog.records if "late" in r.getMessage()]
    assert any("POST /oauth/token" in w for w in warnings), warnings
    clock.remove(session)
    session.close()
    peer.close()


async def test_a_tick_that_stalls_midway_is_counted_late_though_the_clock_skips_after_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first_peer, second_peer = Peer(), Peer()
    first, second = await _session(first_peer.addr), await _session(second_peer.addr)
    clock = MediaClock(warn_every=0.0)
    clock.add(first)
    clock.add(second)
    await first_peer.receive(2)
    late_before, skipped_before = clock.late_ticks, clock.skipped_ticks
    stalls = [0.100]
    for session in (first, second):  # whichever is sent first, the other waits 100 ms
        ticking = session.tick

        def stalled(tick: int, now: float, ticking: Any = ticking) -> None:
            if stalls:
                time.sleep(stalls.pop())  # the process preempted midway through the sends
            ticking(tick, now)

        session.tick = stalled  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="openivr.sip.clock"):
        await first_peer.receive(8)
    # The clock skipped what it could not send in time and ran the next tick at once; callers
    # heard that tick 80 ms late, and so does the lag monitor (measured from the new deadline,
    # it looked on time).
    assert clock.skipped_ticks > skipped_before
    assert clock.late_ticks > late_before
    assert clock.lag_max >= 0.080
    warnings = [r.getMessage() for r in caplog.records if "late" in r.getMessage()]
    assert any("the tick before ran" in w for w in warnings), warnings
    for item in (first, second):
        clock.remove(item)
        item.close()
    first_peer.close()
    second_peer.close()


async def test_a_paced_session_is_read_by_the_clock_in_order_and_by_the_loop_once_off_it() -> None:
    peer = Peer()
    got: list[int] = []

    def on_audio(packet: RtpPacket) -> None:
        got.append(packet.sequence)

    session = RtpSession("PCMA", 8, 101, peer.addr, on_audio, on_audio)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    await session.open(sock)
    clock = MediaClock()
    clock.add(session)
    # A burst (a phone catching up, or a loop that was busy): every packet arrives, in order.
    for seq in range(20):
        peer.send(session, seq)
    for _ in range(50):
        if len(got) == 20:
            break
        await asyncio.sleep(0.02)
    assert got == list(range(20))
    # Off the clock (a bridge takes the call), the loop reads the socket again.
    clock.remove(session)
    peer.send(session, 20)
    for _ in range(50):
        if len(got) == 21:
            break
        await asyncio.sleep(0.01)
    assert got[-1] == 20
    # Back on the clock, and the session still hears its caller.
    clock.add(session)
    peer.send(session, 21)
    for _ in range(50):
        if len(got) == 22:
            break
        await asyncio.sleep(0.02)
    assert got[-1] == 21
    clock.remove(session)
    session.close()
    peer.close()


def _udp_drops(port: int) -> int:
    """Packets the kernel dropped for the local UDP port (its socket filter's drops count)."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}"):
            return int(fields[-1])
    raise AssertionError(f"no UDP socket on port {port}")


@pytest.mark.parametrize("in_kernel", [True, False], ids=["kernel-filter", "read-all"])
async def test_audio_nobody_looks_at_is_counted_and_latched_but_not_handed_on(
    in_kernel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the kernel's filter (Linux), all but 1 in AUDIO_SAMPLE audio packets never reach
    # the node; without it each is read and counted. Either way the call sees the same.
    monkeypatch.setattr(RtpSession, "filter_audio", in_kernel)
    peer, moved = Peer(), Peer()
    heard: list[RtpPacket] = []
    session = RtpSession("PCMA", 8, 101, ("127.0.0.1", 9), heard.append, heard.append)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    await session.open(sock)
    session.audio_wanted = False
    # The caller's first packet tells where to send; the filter goes on after it.
    peer.send(session, 0)
    for _ in range(100):
        if session.stats.packets_received == 1:
            break
        await asyncio.sleep(0.01)
    assert session.remote == peer.addr
    for seq in range(1, AUDIO_SAMPLE + 1):  # 16 more (sequence numbers 1..16)
        peer.send(session, seq)
    moved.send(session, 2, pt=101)  # an RFC 4733 event is always handed on
    for _ in range(100):
        if session.stats.packets_received == AUDIO_SAMPLE + 2:
            break
        await asyncio.sleep(0.01)
    assert session.stats.packets_received == AUDIO_SAMPLE + 2
    assert [p.payload_type for p in heard] == [101]
    assert session.remote == moved.addr  # symmetric RTP follows the newest source
    if sys.platform == "linux":
        assert _udp_drops(session.local_port) == (AUDIO_SAMPLE - 1 if in_kernel else 0)
    # A recording starts: every audio packet is read and handed on again.
    session.audio_wanted = True
    peer.send(session, 17)
    for _ in range(100):
        if len(heard) == 2:
            break
        await asyncio.sleep(0.01)
    assert [p.sequence for p in heard[1:]] == [17]
    assert session.remote == peer.addr
    session.close()
    peer.close()
    moved.close()


class _Call:
    """Stands where a call is: the session hands it audio and keys through its methods."""

    def __init__(self) -> None:
        self.heard = 0

    def on_audio(self, _packet: RtpPacket) -> None:
        self.heard += 1


async def test_a_closed_session_and_its_call_are_freed_without_the_garbage_collector() -> None:
    # Memory a call held comes back when it ends, not at the next full collection.
    call = _Call()
    session = RtpSession("PCMA", 8, 101, ("127.0.0.1", 9), call.on_audio, call.on_audio)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    await session.open(sock)
    session_gone, call_gone = weakref.ref(session), weakref.ref(call)
    gc.disable()
    try:
        session.close()
        del session, call
        assert session_gone() is None and call_gone() is None
    finally:
        gc.enable()


class _Cycle:
    """Garbage only a collection frees: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


async def test_what_lived_is_frozen_while_calls_are_up_and_swept_once_none_is() -> None:
    clock = MediaClock()
    stop = clock.age_heap(every=0.05)
    session = await _session(("127.0.0.1", 9))
    clock.add(session)
    try:
        cycle = _Cycle()
        gone = weakref.ref(cycle)
        del cycle
        # While calls are up, what has lived is frozen: full passes no longer walk it.
        frozen = clock.heap_freezes
        for _ in range(200):
            if clock.heap_freezes >= frozen + 2:
                break
            await asyncio.sleep(0.01)
        assert clock.heap_freezes >= frozen + 2
        gc.collect()
        assert gone() is not None  # frozen: not even a full collection sees it
        # No call up: everything is collected once, and what lives is frozen again.
        clock.remove(session)
        for _ in range(200):
            if clock.heap_sweeps:
                break
            await asyncio.sleep(0.01)
        assert clock.heap_sweeps == 1 and gone() is None
        assert gc.get_freeze_count() > 0
        await asyncio.sleep(0.2)
        assert clock.heap_sweeps == 1  # nothing frozen since: no second sweep
    finally:
        stop()
        session.close()
        gc.unfreeze()
