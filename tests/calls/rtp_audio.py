"""Audio for live-call tests: a tone as a pcap SIPp plays, a UDP socket that hears what the
node sends a caller, and the frequency a recording is made of."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from openivr.audio import g711, tones

_ETHERNET = b"\x00\x00\x00\x00\x00\x02" + b"\x00\x00\x00\x00\x00\x01" + b"\x08\x00"


def _ipv4_udp(payload: bytes, sport: int, dport: int) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0,
        64,
        17,
        0,
        socket.inet_aton("127.0.0.1"),
        socket.inet_aton("127.0.0.1"),
    )
    words = struct.unpack("!10H", header)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    header = header[:10] + struct.pack("!H", ~total & 0xFFFF) + header[12:]
    return header + udp


def write_tone_pcap(path: Path, frequency: float, seconds: float) -> Path:
    """A pcap of RTP packets (PCMA, 20 ms each, paced in real time) carrying a sine tone, as
    SIPp's play_pcap_audio takes it."""
    samples = tones.beep(frequency, seconds * 1000, -12.0)
    frames = g711.encode_frames(samples, "PCMA")
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for n, frame in enumerate(frames):
        rtp = struct.pack("!BBHII", 0x80, 8, n, n * 160, 0x1234ABCD) + frame
        packet = _ETHERNET + _ipv4_udp(rtp, 6000, 6002)
        micros = n * 20_000
        out += struct.pack(
            "<IIII", micros // 1_000_000, micros % 1_000_000, len(packet), len(packet)
        )
        out += packet
    path.write_bytes(bytes(out))
    return path


class RtpEar:
    """A UDP port a SIPp caller names as its audio address: it keeps every RTP packet the node
    sends there, so a test hears what the caller heard."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.packets: list[tuple[int, int, bytes]] = []  # (sequence, payload type, payload)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            if len(data) > 12:
                payload_type = data[1] & 0x7F
                sequence = struct.unpack("!H", data[2:4])[0]
                self.packets.append((sequence, payload_type, data[12:]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def heard(self, codec: g711.Codec = "PCMU") -> NDArray[np.int16]:
        """The audio received, in sequence order (16-bit 8 kHz)."""
        payload_type = 0 if codec == "PCMU" else 8
        frames = [p for _, t, p in sorted(self.packets) if t == payload_type]
        return g711.decode(b"".join(frames), codec)


def dominant_hz(samples: NDArray[np.int16], rate: int = 8000) -> float:
    """The strongest frequency of a stretch of audio."""
    data = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
    return float(np.fft.rfftfreq(len(data), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])


def loud_part(samples: NDArray[np.int16], seconds: float = 1.0) -> NDArray[np.int16]:
    """The first `seconds` of a recording from where it gets loud (past leading silence)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 2000)
    start = int(loud[0]) if len(loud) else 0
    return samples[start : start + int(seconds * 8000)]
