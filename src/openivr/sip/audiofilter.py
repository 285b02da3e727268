"""The kernel's audio filter: a call that does not look at its caller's audio reads almost none.

A talking caller sends 50 RTP packets a second. A call with RFC 4733 keys and no recording never
looks at that audio, yet reading each packet cost a `recvfrom` and some Python (~2 µs, about a
third of the media path). A classic BPF socket filter (SO_ATTACH_FILTER) keeps the RFC 4733
events and 1 in AUDIO_SAMPLE audio packets (by sequence number) and has the kernel drop the
rest before they are queued: enough to follow a caller's media that moves (symmetric RTP) and,
by their sequence numbers, to count what arrived (`RtpSession` does both).
"""

from __future__ import annotations

import ctypes
import socket
import struct

# One audio packet in this many reaches the node (16 packets: 320 ms).
AUDIO_SAMPLE = 16
# Linux's socket options for a classic BPF socket filter (asm-generic/socket.h).
SO_ATTACH_FILTER, SO_DETACH_FILTER = 26, 27

# (struct sock_fprog, the instructions it points at) per event payload type: the kernel copies
# the program when it is attached, but the buffer is kept so the pointer never dangles.
_programs: dict[int, tuple[bytes, ctypes.Array[ctypes.c_char]]] = {}


def audio_filter(event_payload_type: int) -> bytes:
    """A `struct sock_fprog` keeping RTP packets of the event payload type and audio packets
    whose sequence number is a multiple of AUDIO_SAMPLE; every other packet is dropped.
    A UDP socket's filter sees the packet from its UDP header on: the RTP header is at 8."""
    known = _programs.get(event_payload_type)
    if known is None:
        instructions = (
            (0x30, 0, 0, 9),  # A = RTP byte 1 (marker, payload type)
            (0x54, 0, 0, 0x7F),  # A &= 0x7f: the payload type
            (0x15, 3, 0, event_payload_type),  # an event: keep
            (0x28, 0, 0, 10),  # A = the sequence number
            (0x54, 0, 0, AUDIO_SAMPLE - 1),
            (0x15, 0, 1, 0),  # one in AUDIO_SAMPLE: keep, else drop
            (0x06, 0, 0, 0xFFFFFFFF),  # keep the whole packet
            (0x06, 0, 0, 0),  # drop
        )
        code = b"".join(struct.pack("HBBI", *i) for i in instructions)
        buffer = ctypes.create_string_buffer(code, len(code))
        program = struct.pack("HP", len(instructions), ctypes.addressof(buffer))
        known = _programs[event_payload_type] = (program, buffer)
    return known[0]


def attach_audio_filter(sock: socket.socket, event_payload_type: int) -> None:
    """Have the kernel drop most audio packets for this socket; OSError where it cannot."""
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, audio_filter(event_payload_type))


def detach_audio_filter(sock: socket.socket) -> None:
    """Every packet reaches the socket again."""
    sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
