"""Tones for real peers to send, and hearing them again in a recording.

`tone_pcap` writes a pcap of RTP packets (Ethernet, IPv4, UDP) carrying a sine in G.711, which
SIPp plays with `play_pcap_audio`; `tone_power` measures how much of a stretch of audio is one
frequency (Goertzel), so a test can tell which party is in a recording.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt

from openivr.audio import g711

RATE = 8000
FRAME = 160


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tone_pcap(
    path: Path,
    frequency: float,
    seconds: float,
    codec: g711.Codec,
    amplitude: int = 8000,
    first_frame: int = 0,
    ssrc: int = 0x51C0FFEE,
) -> Path:
    """A pcap of 20 ms RTP packets of a sine at `frequency` in `codec` (payload type 0 or 8);
    its sequence numbers and timestamps count from `first_frame` (a stream that goes on), in
    stream `ssrc` (another one: the phone restarted its stream)."""
    samples = int(seconds * RATE)
    t = np.arange(samples) / RATE
    pcm = (amplitude * np.sin(2 * math.pi * frequency * t)).astype(np.int16)
    payload = g711.encode(pcm, codec)
    pt = 0 if codec == "PCMU" else 8
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for index in range(samples // FRAME):
        number = first_frame + index
        rtp = struct.pack("!BBHII", 0x80, pt, number & 0xFFFF, number * FRAME, ssrc)
        rtp += payload[index * FRAME : (index + 1) * FRAME]
        udp = struct.pack("!HHHH", 40000, 40002, 8 + len(rtp), 0) + rtp
        ip = bytearray(
            struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(udp),
                index & 0xFFFF,
                0,
                64,
                17,
                0,
                bytes([10, 0, 0, 1]),
                bytes([10, 0, 0, 2]),
            )
        )
        ip[10:12] = struct.pack("!H", _checksum(bytes(ip)))
        frame = b"\x00" * 12 + b"\x08\x00" + bytes(ip) + udp
        micros = index * 20_000
        out += struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame))
        out += frame
    path.write_bytes(bytes(out))
    return path


def tone_power(samples: npt.NDArray[np.float64], frequency: float) -> float:
    """The share (0..1) of a stretch's energy that is at `frequency` (Goertzel)."""
    coefficient = 2 * math.cos(2 * math.pi * frequency / RATE)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coefficient * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
    energy = float(np.sum(samples * samples))
    return 0.0 if energy == 0 else float(2 * power / (len(samples) * energy))


def windows_with(
    pcm: npt.NDArray[np.int16], frequencies: tuple[float, ...], share: float = 0.2
) -> int:
    """How many 200 ms stretches hold every one of `frequencies` at `share` of their energy."""
    size = RATE // 5
    count = 0
    for start in range(0, len(pcm) - size + 1, size):
        window = pcm[start : start + size].astype(np.float64)
        if all(tone_power(window, f) >= share for f in frequencies):
            count += 1
    return count
