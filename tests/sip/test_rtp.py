"""RTP packets and RFC 4733 events."""

from __future__ import annotations

import pytest

from openivr.sip.dtmf import EventDeduplicator, parse_info_body
from openivr.sip.rtp import RtpError, RtpPacket, TelephoneEvent


def test_packet_round_trip_with_csrc_and_extension() -> None:
    packet = RtpPacket(
        payload_type=8,
        sequence=65535,
        timestamp=2**32 - 1,
        ssrc=0xDEADBEEF,
        payload=b"\xd5" * 160,
        marker=True,
        csrc=[1, 2],
        extension=(0xBEDE, b"\x00\x01\x02\x03"),
    )
    data = packet.serialise()
    assert len(data) == 12 + 8 + 8 + 160
    assert RtpPacket.parse(data) == packet


def test_header_bits_on_the_wire() -> None:
    data = RtpPacket(0, 1, 160, 7, b"\xff", marker=True).serialise()
    assert data[:2] == b"\x80\x80"
    assert data[2:4] == b"\x00\x01"


def test_padding_is_removed() -> None:
    data = bytearray(RtpPacket(0, 1, 2, 3, b"abc").serialise() + b"\x00\x00\x03")
    data[0] |= 0x20
    assert RtpPacket.parse(bytes(data)).payload == b"abc"


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80\x00", b"\x40" + b"\x00" * 11, b"\x8f" + b"\x00" * 11, b"\x90" + b"\x00" * 13],
)
def test_bad_packets_raise(data: bytes) -> None:
    with pytest.raises(RtpError):
        RtpPacket.parse(data)


def test_telephone_event_round_trip() -> None:
    event = TelephoneEvent(event=11, end=True, volume=10, duration=800)
    assert TelephoneEvent.parse(event.serialise()) == event
    assert event.key == "#"
    assert TelephoneEvent(16, False, 0, 0).key is None  # flash is not a key


def test_dedupe_reports_each_event_once() -> None:
    dedupe = EventDeduplicator()
    keys = []
    # Start packets, updates and three end packets share the event's timestamp.
    for ts, event in [(1000, 5)] * 3 + [(1000, 5)] * 3 + [(2600, 5)] * 4 + [(4000, 11)] * 2:
        key = dedupe.feed(ts, TelephoneEvent(event, False, 10, 160))
        if key:
            keys.append(key)
    assert keys == ["5", "5", "#"]


@pytest.mark.parametrize(
    ("content_type", "body", "key"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
        ("application/dtmf-relay", b"Signal= #\r\nDuration=250", "#"),
        ("application/dtmf-relay", b"signal=11\r\n", "#"),
        ("application/dtmf", b"*", "*"),
        ("application/dtmf", b"x", None),
        ("text/plain", b"5", None),
    ],
)
def test_info_bodies(content_type: str, body: bytes, key: str | None) -> None:
    assert parse_info_body(content_type, body) == key
