"""RTP media: one UDP socket per call, all calls paced by one shared 20 ms clock.

A session reads and writes its socket itself (the loop only watches it for readability), not
through an asyncio datagram transport: a relayed packet costs one recvfrom and one sendto and
no transport bookkeeping, a send that fails drops the packet instead of queueing stale audio, a
socket that fell behind is drained in one wake-up, and a bench can read kernel receive
timestamps on the very path calls use.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import secrets
import socket
import struct
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from openivr.audio import g711
from openivr.audio.g711 import Codec
from openivr.sip.audiofilter import attach_audio_filter, detach_audio_filter
from openivr.sip.rtp import SAMPLES_PER_FRAME, RtpError, RtpPacket, silence_frame

if TYPE_CHECKING:
    from openivr.sip.recording import CallRecording

log = logging.getLogger(__name__)

_RTP_HEADER = struct.Struct("!BBHII")
# Big enough for any RTP packet we take (G.711 at up to 120 ms ptime, plus header extensions).
_MAX_DATAGRAM = 2048
# Draining a backlogged socket: at most this many packets per wake-up (fairness between
# calls), and "backlogged" means woken again within this many seconds of the last read.
_MAX_BURST = 16
_BACKLOG_GAP = 0.010
# SO_TIMESTAMPNS ancillary data: struct timespec (two longs on Linux).
_TIMESPEC = struct.Struct("@ll")
# The socket module does not name it; 35 on Linux (asm-generic/socket.h).
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None)


# Samples kept per series: at least the last _WINDOW, at most twice that (trimmed in one go).
_WINDOW = 3000


def _samples() -> array[float]:
    # A flat array, not a deque of floats: the garbage collector walks every item of a deque
    # on each full collection, which with 500 sessions stalled all calls' media for tens of ms.
    return array("d")


def _keep(samples: array[float], value: float) -> None:
    samples.append(value)
    if len(samples) > 2 * _WINDOW:
        del samples[:-_WINDOW]


@dataclass
class RtpStats:
    """Counters for one call's RTP, plus recent send intervals (seconds) for pacing checks."""

    packets_sent: int = 0
    packets_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    send_intervals: array[float] = field(default_factory=_samples)
    # Sends the socket refused (buffer full, peer unreachable): RTP is dropped, never queued.
    send_errors: int = 0
    # Only with receive timestamps on (a bench): kernel arrival intervals of incoming packets
    # and, for relayed packets, kernel arrival → relayed send returned, in seconds.
    arrival_intervals: array[float] = field(default_factory=_samples)
    relay_latencies: array[float] = field(default_factory=_samples)
    _last_send: float | None = None
    _last_arrival: float | None = None

    def record_send(self, now: float, size: int) -> None:
        """Count one sent packet."""
        self.packets_sent += 1
        self.bytes_sent += size
        if self._last_send is not None:
            _keep(self.send_intervals, now - self._last_send)
        self._last_send = now

    def record_arrival(self, kernel_time: float) -> None:
        """Note one packet's kernel receive time (receive timestamps only)."""
        if self._last_arrival is not None:
            _keep(self.arrival_intervals, kernel_time - self._last_arrival)
        self._last_arrival = kernel_time

    def interval_summary(self) -> dict[str, float]:
        """min/mean/p99/max of the recent send intervals, in milliseconds."""
        values = sorted(self.send_intervals[-_WINDOW:])
        if not values:
            return {"count": 0, "min": 0.0, "mean": 0.0, "p99": 0.0, "max": 0.0}
        p99 = values[min(len(values) - 1, math.ceil(0.99 * len(values)) - 1)]
        return {
            "count": float(len(values)),
            "min": values[0] * 1000,
            "mean": sum(values) / len(values) * 1000,
            "p99": p99 * 1000,
            "max": values[-1] * 1000,
        }


def _ignore_read() -> None:
    """A closed session's reader."""


def _ignore_packet(_packet: RtpPacket) -> None:
    """A closed session's receiver."""


class PortRange:
    """Even RTP ports handed out round-robin from a configured range."""

    def __init__(self, first: int, last: int) -> None:
        if not 0 < first <= last < 65536:
            raise ValueError(f"RTP port range {first}-{last} is not within 1-65535")
        self.first = first + (first % 2)
        self.last = last
        self._cursor = self.first

    def bind(self, host: str) -> socket.socket:
        """A UDP socket bound to a free even port of the range; OSError when all are taken."""
        span = (self.last - self.first) // 2 + 1
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(span):
            port = self._cursor
            self._cursor = self._cursor + 2 if self._cursor + 2 <= self.last else self.first
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError as exc:
                sock.close()
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            sock.setblocking(False)
            return sock
        raise OSError(errno.EADDRINUSE, f"no free RTP port in {self.first}-{self.last}")


class RtpSession:
    """One call's RTP: sends the current prompt (or silence) each tick, receives the caller."""

    # Benches set this before calls start: every session opened then reads each packet's
    # kernel receive time too (SO_TIMESTAMPNS), so stats hold arrival intervals and, when
    # relayed, the relay's own latency. Off in service: it costs a recvmsg per packet.
    receive_timestamps = False
    # Benches and tests set this too: every session opened then keeps its send intervals
    # (`stats.send_intervals`). Off in service: a clock read and an array append per packet
    # were ~9 % of the media path's CPU, and the media clock's lag monitor already says how
    # late sends run, for all calls at once.
    keep_send_intervals = False
    # Whether a call that does not look at its caller's audio (RFC 4733 keys, no recording) has
    # the kernel drop its audio packets (Linux; tests switch it off to cover the other path).
    # Talking callers send 50 packets a second the call never reads; reading each one cost a
    # recvfrom and some Python (~2 µs). A socket filter keeps RFC 4733 events and 1 in
    # AUDIO_SAMPLE audio packets: enough to follow a caller's media that moves (symmetric RTP,
    # within 320 ms) and, by their sequence numbers, to count what arrived. It is attached once
    # the caller's first packet was read, so where to send is learnt as soon as ever.
    filter_audio = sys.platform == "linux"

    def __init__(
        self,
        codec: Codec,
        payload_type: int,
        event_payload_type: int | None,
        remote: tuple[str, int],
        on_audio: Callable[[RtpPacket], None],
        on_event: Callable[[RtpPacket], None],
    ) -> None:
        self.codec = codec
        self.payload_type = payload_type
        self.event_payload_type = event_payload_type
        # Payload type → codec of the audio taken from the far end (each packet is decoded by
        # its own); a payload type neither here nor the event one is dropped.
        self.receives: dict[int, Codec] = {payload_type: codec}
        self.remote = remote
        self.stats = RtpStats()
        self.ssrc = secrets.randbits(32)
        self.local_port = 0
        self.sending = True
        self._on_audio = on_audio
        self._on_event = on_event
        # The call's recording, when it is recorded (sip/recording.py): what arrives here and
        # what is sent from here are its two ways.
        self._recording: CallRecording | None = None
        # A bridge takes raw datagrams (no packet object per packet on the relay path).
        self.relay: Callable[[bytes, tuple[str, int]], bool] | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: Callable[[], None] = self._read_ready
        self._watched = False  # whether the loop watches the socket (else the clock reads it)
        self._burst_override = 0  # the clock reads exactly one packet per poll round
        self._filtered = False  # the kernel drops most audio (see filter_audio)
        self._sampled_sequence: int | None = None
        self._heard = False  # a packet came from the caller (the filter waits for the first)
        # Whether the call looks at incoming audio (in-band keys, a recording); when not, an
        # audio packet is only counted and its source latched, never parsed.
        self._audio_wanted = True
        self._last_read = 0.0
        self._sequence = secrets.randbits(16)
        self._timestamp_base = secrets.randbits(32)
        self._first_tick = 0
        self._silence = silence_frame(codec)
        self._frames: Sequence[bytes] | None = None
        self._index = 0
        self._on_done: Callable[[], None] | None = None
        self._talkspurt = True
        # The RTP timestamp of the last packet sent, so relayed media continues the stream.
        self.last_timestamp = self._timestamp_base

    def use(self, codec: Codec, payload_type: int, receives: dict[int, Codec]) -> None:
        """Send in `codec` under `payload_type` from now on (a re-INVITE or an answer changed
        it), the rest of a prompt being sent included; take audio of the `receives` types."""
        if codec != self.codec:
            frames = self._frames
            if frames is not None:
                self._frames = [g711.transcode(f, self.codec, codec) for f in frames]
            self._silence = silence_frame(codec)
        self.codec, self.payload_type = codec, payload_type
        self.receives = {**receives, payload_type: codec}

    async def open(self, sock: socket.socket) -> None:
        """Start receiving on an already bound socket (the session owns it from now on)."""
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        self.local_port = sock.getsockname()[1]
        self._sock, self._loop = sock, loop
        self._reader = self._read_ready
        if self.receive_timestamps:
            if _SO_TIMESTAMPNS is None:
                raise OSError(errno.ENOPROTOOPT, "receive timestamps need SO_TIMESTAMPNS")
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            self._reader = self._read_ready_timestamped
        self._filter_audio()
        self.give_reading()

    @property
    def recording(self) -> CallRecording | None:
        """The call's recording, when it is recorded (sip/recording.py)."""
        return self._recording

    @recording.setter
    def recording(self, recording: CallRecording | None) -> None:
        self._recording = recording
        self._filter_audio()  # a recorded call's audio is read, every packet

    @property
    def audio_wanted(self) -> bool:
        """Whether the call looks at incoming audio (in-band keys, a recording, a bridge)."""
        return self._audio_wanted

    @audio_wanted.setter
    def audio_wanted(self, wanted: bool) -> None:
        self._audio_wanted = wanted
        self._filter_audio()

    def _filter_audio(self) -> None:
        """Attach or detach the kernel's audio filter as `audio_wanted` says (filter_audio)."""
        sock = self._sock
        event = self.event_payload_type
        want = (
            not self._audio_wanted
            and self._recording is None
            and event is not None
            and self.filter_audio
            and self._heard
        )
        if sock is None or want == self._filtered:
            return
        try:
            if want:
                assert event is not None
                attach_audio_filter(sock, event)
            else:
                detach_audio_filter(sock)
        except OSError as exc:  # no socket filters here: every packet is read, as before
            log.debug("RTP socket on port %s keeps its filter state: %s", self.local_port, exc)
            return
        self._filtered = want
        self._sampled_sequence = None

    def take_reading(self) -> int | None:
        """The clock reads this socket from now on (the loop stops watching it); its fd."""
        sock = self._sock
        if sock is None:
            return None
        if self._watched and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
        self._watched = False
        return sock.fileno()

    def give_reading(self) -> None:
        """The loop reads this socket again the moment a packet arrives (relays need that)."""
        sock = self._sock
        if sock is not None and not self._watched and self._loop is not None:
            self._loop.add_reader(sock.fileno(), self._reader)
            self._watched = True

    def read_now(self) -> None:
        """Read one packet the socket holds (the clock calls this when epoll says it has one)."""
        if self._reader is not self._read_ready:  # receive timestamps (a bench), or closed
            self._burst_override = 1
            try:
                self._reader()
            finally:
                self._burst_override = 0
            return
        # Hot path (every packet of every paced call): one recvfrom, no burst logic.
        sock = self._sock
        if sock is None:
            return
        try:
            data, addr = sock.recvfrom(_MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.error_received(exc)
            return
        relay = self.relay
        if relay is None or not relay(data, addr):
            self._receive(data, addr)

    def drain(self) -> None:
        """Read what the socket holds now (a call ending while recorded: what the caller said
        before hanging up waits there until the next tick, which will not come)."""
        self._burst_override = 64
        try:
            self._reader()
        finally:
            self._burst_override = 0

    def close(self) -> None:
        """Release the socket, and what the session refers to: its reader (a method of its own)
        and its receivers (methods of the call) made the session and its call a cycle that only
        a full garbage collection could free; without it refcounting frees them at once."""
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._watched and self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock.fileno())
            self._watched = False
            sock.close()
        self._reader = _ignore_read
        self._on_audio = self._on_event = _ignore_packet
        self.relay = None

    @property
    def udp_socket(self) -> socket.socket | None:
        """The socket the session reads and writes (None once closed)."""
        return self._sock

    def wrap_socket(self, wrap: Callable[[socket.socket], socket.socket]) -> None:
        """Put a layer between the session and its socket (SRTP, `sip/srtp.py`): the same file
        under a socket object that transforms what passes, so whoever watches the file keeps
        watching it. A session without one pays nothing for it."""
        if self._sock is not None:
            self._sock = wrap(self._sock)

    def swap_receivers(
        self, on_audio: Callable[[RtpPacket], None], on_event: Callable[[RtpPacket], None]
    ) -> tuple[Callable[[RtpPacket], None], Callable[[RtpPacket], None]]:
        """Route incoming audio and events elsewhere (a bridge); returns the previous pair."""
        previous = (self._on_audio, self._on_event)
        self._on_audio, self._on_event = on_audio, on_event
        self.audio_wanted = True  # whoever takes the audio now (a bridge) looks at it
        return previous

    def attach(self, tick: int) -> None:
        """Called by the clock: RTP timestamps count from this tick."""
        self._first_tick = tick

    # Sending -------------------------------------------------------------------------------

    def play(self, frames: Sequence[bytes], on_done: Callable[[], None]) -> None:
        """Send these frames, one per tick, then call `on_done` and go back to silence."""
        self._frames, self._index, self._on_done = frames, 0, on_done
        self._talkspurt = True

    def stop_playing(self) -> bool:
        """Stop the current prompt; True when one was playing."""
        playing = self._frames is not None
        self._frames, self._on_done = None, None
        return playing

    @property
    def playing(self) -> bool:
        """Whether a prompt is being sent."""
        return self._frames is not None

    def tick(self, tick: int, now: float) -> None:
        """Send the packet for this tick."""
        marker = False
        frames = self._frames
        if frames is not None:
            payload = frames[self._index]
            marker, self._talkspurt = self._talkspurt, False
            self._index += 1
            if self._index >= len(frames):
                done = self._on_done
                self._frames, self._on_done = None, None
                self._talkspurt = True
                if done is not None:
                    asyncio.get_running_loop().call_soon(done)
        else:
            payload = self._silence
        sock = self._sock
        if sock is None or not self.sending:
            return
        # Hot path (every call, every 20 ms): `_send` inlined, the fixed header packed directly.
        timestamp = (
            self._timestamp_base + (tick - self._first_tick) * SAMPLES_PER_FRAME
        ) & 0xFFFFFFFF
        recording = self._recording
        if recording is not None:  # what the recorded party hears: prompts, ringback, silence
            recording.heard.add(self.ssrc, timestamp, payload, self.codec)
        sequence = self._sequence
        packet = (
            _RTP_HEADER.pack(
                0x80,
                0x80 | self.payload_type if marker else self.payload_type,
                sequence,
                timestamp,
                self.ssrc,
            )
            + payload
        )
        self._sequence = (sequence + 1) & 0xFFFF
        self.last_timestamp = timestamp
        try:
            sock.sendto(packet, self.remote)
        except OSError as exc:
            self._send_failed(exc)
            return
        stats = self.stats
        stats.packets_sent += 1
        stats.bytes_sent += len(packet)
        if self.keep_send_intervals:
            self._note_send(stats)

    def forward(self, payload_type: int, payload: bytes, marker: bool, timestamp: int) -> None:
        """Send one relayed packet now, under this session's SSRC and sequence numbers."""
        if self._sock is None or not self.sending:
            return
        self._send(0x80 | payload_type if marker else payload_type, timestamp & 0xFFFFFFFF, payload)

    def _send(self, second: int, timestamp: int, payload: bytes) -> None:
        recording = self._recording
        if recording is not None and second & 0x7F == self.payload_type:
            recording.heard.add(self.ssrc, timestamp, payload, self.codec)
        packet = _RTP_HEADER.pack(0x80, second, self._sequence, timestamp, self.ssrc) + payload
        self._sequence = (self._sequence + 1) & 0xFFFF
        self.last_timestamp = timestamp
        try:
            self._sock.sendto(packet, self.remote)  # type: ignore[union-attr]
        except OSError as exc:
            self._send_failed(exc)
            return
        stats = self.stats
        stats.packets_sent += 1
        stats.bytes_sent += len(packet)
        if self.keep_send_intervals:
            self._note_send(stats)

    def _send_failed(self, exc: OSError) -> None:
        # Full buffer or an ICMP error from an earlier packet: this packet is lost, as it
        # would be on the wire; the SIP side decides when the call ends.
        self.stats.send_errors += 1
        log.debug("RTP send on port %s failed: %s", self.local_port, exc)

    @staticmethod
    def _note_send(stats: RtpStats) -> None:
        # The real send time, not the tick's: with many calls the last send of a tick is later.
        # (RtpStats.record_send without the counting: this runs 50 times a second per call.)
        now = time.monotonic()
        last = stats._last_send
        if last is not None:
            intervals = stats.send_intervals
            intervals.append(now - last)
            if len(intervals) > 2 * _WINDOW:
                del intervals[:-_WINDOW]
        stats._last_send = now

    # Receiving ------------------------------------------------------------------------------

    def _read_ready(self) -> None:
        """Read one packet, or drain the socket when a queue built up (bounded)."""
        sock = self._sock
        if sock is None:
            return  # closed by a handler earlier in this loop iteration
        for _ in range(self._burst()):
            try:
                data, addr = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.error_received(exc)
                return
            relay = self.relay
            if relay is None or not relay(data, addr):
                self._receive(data, addr)
            if self._sock is None:
                return

    def _burst(self) -> int:
        # Packets come every 20 ms. Usually a wake-up finds one: read it and stop, since the
        # recvfrom that ends a drain (EAGAIN, an exception) costs more than it saves. Woken again
        # within half a packet time means a queue built up while the loop was busy: drain it,
        # or one packet per loop iteration never catches up with hundreds of sockets behind.
        if self._burst_override:
            return self._burst_override
        now = time.monotonic()
        behind = now - self._last_read < _BACKLOG_GAP
        self._last_read = now
        return _MAX_BURST if behind else 1

    def _read_ready_timestamped(self) -> None:
        """As _read_ready, also noting each packet's kernel receive time (SO_TIMESTAMPNS)."""
        sock = self._sock
        if sock is None:
            return
        for _ in range(self._burst()):
            try:
                data, ancillary, _flags, addr = sock.recvmsg(_MAX_DATAGRAM, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.error_received(exc)
                return
            relay = self.relay
            if relay is None or not relay(data, addr):
                self._receive(data, addr)
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                    arrival = seconds + nanoseconds * 1e-9
                    self.stats.record_arrival(arrival)
                    if relay is not None:
                        # Our own delay, as an upper bound: the wait in the socket while the
                        # loop was busy, plus our handling, up to the relayed sendto returned.
                        _keep(self.stats.relay_latencies, time.time() - arrival)
            if self._sock is None:
                return

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        """Handle one incoming RTP packet."""
        relay = self.relay
        if relay is None or not relay(data, addr):  # type: ignore[arg-type]
            self._receive(data, addr)

    def _receive(self, data: bytes, addr: tuple[str | object, int]) -> None:
        # Hot path (every packet of every call): the payload type is looked at before anything
        # is parsed, and audio nobody listens to is only counted.
        if len(data) < 12:
            return
        payload_type = data[1] & 0x7F
        codec = self.receives.get(payload_type)
        if codec is None and payload_type != self.event_payload_type:
            return  # not a payload type the far end offered: not audio we could decode
        stats = self.stats
        if self._filtered and codec is not None:
            # One audio packet in AUDIO_SAMPLE gets here: the ones the kernel dropped since the
            # last are counted by the sequence number's advance.
            sequence = (data[2] << 8) | data[3]
            last, self._sampled_sequence = self._sampled_sequence, sequence
            advance = (sequence - last) & 0xFFFF if last is not None else 1
            count = advance if 0 < advance < 0x8000 else 1
            stats.packets_received += count
            stats.bytes_received += count * len(data)
        else:
            stats.packets_received += 1
            stats.bytes_received += len(data)
            if not self._heard:  # the caller's first packet: the filter may go on now
                self._heard = True
                self._filter_audio()
                self._sampled_sequence = (data[2] << 8) | data[3]
        if addr != self.remote:
            source = (str(addr[0]), int(addr[1]))
            if source != self.remote:
                # Symmetric RTP: answer where the caller's media comes from (NAT, SDP lies).
                self.remote = source
        is_event = codec is None
        if codec is not None:
            recording = self._recording
            if recording is not None:
                recording.party.packet(data, codec)
            if not self._audio_wanted:
                return
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return
        try:
            if is_event:
                self._on_event(packet)
            else:
                self._on_audio(packet)
        except Exception:  # a bad packet must not break the call
            log.exception("handling RTP from %s failed", addr)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors (caller gone) are not fatal; the SIP side decides when the call ends."""
        log.debug("RTP socket error on port %s: %s", self.local_port, exc)
