"""Bridging two calls' media: RTP relayed both ways, transcoded only when the codecs differ.

Packets are relayed the moment they arrive (no re-pacing, so no added delay): the far ends'
own 20 ms pacing carries through. Each direction keeps the outgoing stream continuous under
our SSRC: sequence numbers are ours and timestamps are the source's shifted by a fixed
offset, re-based when the source changes SSRC. DTMF travels as RFC 4733 events; a key that
arrives as SIP INFO is turned into RFC 4733 packets for the other side. A recorded party's
audio is handed to its recording as it is relayed (`sip/recording.py`); what is relayed to them
their own session's send hands over.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable

from openivr.audio import g711
from openivr.sip.media import RtpSession
from openivr.sip.rtp import EVENT_KEYS, SAMPLES_PER_FRAME, RtpPacket, TelephoneEvent

log = logging.getLogger(__name__)

Receiver = Callable[[RtpPacket], None]
_TS_SSRC = struct.Struct("!II")

# A generated key lasts 100 ms (5 packets) and its end is sent three times (RFC 4733 §2.5.1.4).
_KEY_PACKETS = 5
_END_REPEATS = 3


class RelayDirection:
    """One way of a bridge: packets received on `source` go out on `sink`."""

    def __init__(self, source: RtpSession, sink: RtpSession) -> None:
        self.source = source
        self.sink = sink
        self.relayed = 0
        self._ssrc: int | None = None
        self._offset = 0

    def _timestamp(self, packet: RtpPacket) -> tuple[int, bool]:
        if packet.ssrc != self._ssrc:
            # A new source stream: continue ours one frame after what we sent last.
            self._ssrc = packet.ssrc
            self._offset = self.sink.last_timestamp + SAMPLES_PER_FRAME - packet.timestamp
            return (packet.timestamp + self._offset) & 0xFFFFFFFF, True
        return (packet.timestamp + self._offset) & 0xFFFFFFFF, packet.marker

    def raw(self, data: bytes, addr: tuple[str, int]) -> bool:
        """Fast path for plain RTP (no CSRC, extension or padding); False hands it to parse."""
        if len(data) < 12 or data[0] != 0x80:
            return False
        source = self.source
        sink = self.sink
        second = data[1]
        pt = second & 0x7F
        codec = source.receives.get(pt)  # each packet in its own payload type's codec
        if codec is not None:
            payload = data[12:]
            recording = source.recording
            if recording is not None:  # the recorded party's voice, before any transcoding
                stamp, source_ssrc = _TS_SSRC.unpack_from(data, 4)
                recording.party.add(source_ssrc, stamp, payload, codec)
            if codec != sink.codec:
                payload = g711.transcode(payload, codec, sink.codec)
            out_pt: int | None = sink.payload_type
        elif pt == source.event_payload_type:
            payload = data[12:]
            out_pt = sink.event_payload_type
        else:
            return True  # not ours: drop
        stats = source.stats
        stats.packets_received += 1
        stats.bytes_received += len(data)
        if addr != source.remote:
            source.remote = (str(addr[0]), int(addr[1]))  # symmetric RTP, as for calls
        timestamp, ssrc = _TS_SSRC.unpack_from(data, 4)
        if ssrc != self._ssrc:
            self._ssrc = ssrc
            self._offset = sink.last_timestamp + SAMPLES_PER_FRAME - timestamp
            second |= 0x80
        if out_pt is not None:
            sink.forward(out_pt, payload, second > 0x7F, timestamp + self._offset)
            self.relayed += 1
        return True

    def audio(self, packet: RtpPacket) -> None:
        """Relay an audio packet, transcoding G.711 μ-law ↔ A-law when needed."""
        codec = self.source.receives.get(packet.payload_type)
        if codec is None:
            return  # not audio the far end offered
        payload = packet.payload
        recording = self.source.recording
        if recording is not None:
            recording.party.add(packet.ssrc, packet.timestamp, payload, codec)
        if codec != self.sink.codec:
            payload = g711.transcode(payload, codec, self.sink.codec)
        timestamp, marker = self._timestamp(packet)
        self.sink.forward(self.sink.payload_type, payload, marker, timestamp)
        self.relayed += 1

    def event(self, packet: RtpPacket) -> None:
        """Relay an RFC 4733 event under the sink's event payload type."""
        timestamp, marker = self._timestamp(packet)
        if self.sink.event_payload_type is None:
            return  # the other side takes no events; the key is lost (logged once per key)
        self.sink.forward(self.sink.event_payload_type, packet.payload, marker, timestamp)
        self.relayed += 1

    def send_key(self, key: str) -> None:
        """Send a key as RFC 4733 packets (for keys that arrived by SIP INFO)."""
        pt = self.sink.event_payload_type
        if pt is None or key not in EVENT_KEYS:
            log.info("key %r cannot be passed on: the other side takes no RFC 4733 events", key)
            return
        code = EVENT_KEYS.index(key)
        start = (self.sink.last_timestamp + SAMPLES_PER_FRAME) & 0xFFFFFFFF
        loop = asyncio.get_running_loop()
        for i in range(_KEY_PACKETS + _END_REPEATS):
            end = i >= _KEY_PACKETS
            duration = SAMPLES_PER_FRAME * min(i + 1, _KEY_PACKETS)
            payload = TelephoneEvent(code, end, 10, duration).serialise()
            loop.call_later(
                0.02 * min(i, _KEY_PACKETS), self._send_event, pt, payload, i == 0, start
            )

    def _send_event(self, pt: int, payload: bytes, marker: bool, timestamp: int) -> None:
        last = self.sink.last_timestamp
        self.sink.forward(pt, payload, marker, timestamp)
        # Event packets all carry the event's start time; audio continues after the event.
        self.sink.last_timestamp = max(last, timestamp)


class MediaBridge:
    """Relays media between a caller's session and a target leg's session, both ways."""

    def __init__(self, caller: RtpSession, target: RtpSession) -> None:
        self.caller = caller
        self.target = target
        self.to_target = RelayDirection(caller, target)
        self.to_caller = RelayDirection(target, caller)
        self._saved: tuple[Receiver, Receiver] | None = None

    def early(self) -> None:
        """Pass the target's early media (183) to the caller; the caller is not heard yet."""
        self.target.swap_receivers(self.to_caller.audio, self.to_caller.event)
        self.target.relay = self.to_caller.raw

    def connect(self) -> None:
        """Relay both ways."""
        self.early()
        if self._saved is None:
            self._saved = self.caller.swap_receivers(self.to_target.audio, self.to_target.event)
            self.caller.relay = self.to_target.raw

    def release(self) -> None:
        """Give the caller's session back to its call (a transfer that failed)."""
        if self._saved is not None:
            self.caller.swap_receivers(*self._saved)
            self._saved = None
        self.caller.relay = None
        self.target.relay = None
        self.target.swap_receivers(_ignore, _ignore)


def _ignore(packet: RtpPacket) -> None:
    """Drop a packet."""
