"""RTP packets (RFC 3550) and telephone-event payloads (RFC 4733)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from openivr.audio.g711 import Codec, silence_code

_HEADER = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")

# RFC 4733 event codes for the 16 DTMF keys.
EVENT_KEYS = "0123456789*#ABCD"

SAMPLES_PER_FRAME = 160


class RtpError(ValueError):
    """Bytes that are not a valid RTP packet; the message says why."""


def silence_frame(codec: Codec, samples: int = SAMPLES_PER_FRAME) -> bytes:
    """One frame of encoded silence for a codec."""
    return bytes([silence_code(codec)]) * samples


@dataclass
class RtpPacket:
    """An RTP packet: the fixed header fields, CSRCs and payload."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extension: tuple[int, bytes] | None = None

    def serialise(self) -> bytes:
        """Bytes on the wire."""
        first = 0x80 | (0x10 if self.extension else 0) | len(self.csrc)
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        out = bytearray(
            _HEADER.pack(
                first, second, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc
            )
        )
        for c in self.csrc:
            out += struct.pack("!I", c)
        if self.extension:
            profile, data = self.extension
            if len(data) % 4:
                raise RtpError("header extension length must be a multiple of 4 bytes")
            out += struct.pack("!HH", profile, len(data) // 4) + data
        return bytes(out) + self.payload

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse bytes from the wire; raises RtpError."""
        if len(data) < _HEADER.size:
            raise RtpError(f"packet of {len(data)} bytes is shorter than the 12-byte header")
        first, second, seq, ts, ssrc = _HEADER.unpack_from(data)
        if first >> 6 != 2:
            raise RtpError(f"RTP version {first >> 6} is not 2")
        offset = _HEADER.size
        cc = first & 0x0F
        if len(data) < offset + 4 * cc:
            raise RtpError("packet is shorter than its CSRC list")
        csrc = list(struct.unpack_from(f"!{cc}I", data, offset))
        offset += 4 * cc
        extension = None
        if first & 0x10:
            if len(data) < offset + 4:
                raise RtpError("packet is shorter than its header extension")
            profile, words = struct.unpack_from("!HH", data, offset)
            offset += 4
            if len(data) < offset + 4 * words:
                raise RtpError("header extension runs past the packet")
            extension = (profile, data[offset : offset + 4 * words])
            offset += 4 * words
        end = len(data)
        if first & 0x20:
            pad = data[-1]
            if pad == 0 or offset + pad > end:
                raise RtpError(f"padding of {pad} bytes is invalid")
            end -= pad
        return cls(
            payload_type=second & 0x7F,
            sequence=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=data[offset:end],
            marker=bool(second & 0x80),
            csrc=csrc,
            extension=extension,
        )


@dataclass(frozen=True)
class TelephoneEvent:
    """An RFC 4733 named event payload."""

    event: int
    end: bool
    volume: int
    duration: int

    @property
    def key(self) -> str | None:
        """The DTMF key for the event code, or None for non-DTMF events."""
        return EVENT_KEYS[self.event] if self.event < len(EVENT_KEYS) else None

    def serialise(self) -> bytes:
        """The 4-byte payload."""
        return _EVENT.pack(
            self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration
        )

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Parse a payload; raises RtpError."""
        if len(payload) < 4:
            raise RtpError(f"telephone-event payload of {len(payload)} bytes is shorter than 4")
        event, flags, duration = _EVENT.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)
