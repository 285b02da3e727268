"""Bench: CPU per relayed RTP packet, without SIPp (so without its timing noise).

N bridges (caller session ↔ target session) are set up in this process; before each round,
plain sockets queue P packets on every session's socket (both directions); then the loop runs
until every packet is relayed. Reported: the process's CPU time per relayed packet (user +
system, µs) and its user part, best and median of the rounds. The kernel's loopback delivery
to the sink sockets is part of the system time, as it is in service.

With --srtp both legs are SRTP (each peer sends SRTP under its own key; every relayed packet is
unprotected on one socket and protected on the other): the difference to a plain run is what
SRTP costs per packet received plus one sent, so ×50 per second what it costs a call (an IVR
call receives and sends 50 packets a second too).

Run by hand:  taskset -c 0 .venv/bin/python bench/sip/relay_cpu.py [--srtp]
(OPENIVR_BENCH_LOOP=asyncio for the standard loop instead of uvloop.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import statistics
import struct
import time

import pylibsrtp

from openivr.sip.bridge import MediaBridge
from openivr.sip.media import PortRange, RtpSession
from openivr.sip.rtp import RtpPacket
from openivr.sip.srtp import SdesKey, secure


def protector(key: SdesKey) -> pylibsrtp.Session:
    """What a far end encrypts its packets with."""
    return pylibsrtp.Session(
        pylibsrtp.Policy(
            key=key.key,
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        )
    )


def plain_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setblocking(False)
    return sock


def drain(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            sock.recv(2048)
        except BlockingIOError:
            return count
        count += 1


def ignore(packet: RtpPacket) -> None:
    """Drop a packet."""


async def run(bridges: int, packets: int, rounds: int, srtp: bool = False) -> dict[str, float]:
    ports = PortRange(40000, 49999)
    caller_peer, target_peer = plain_socket(), plain_socket()
    pairs: list[tuple[RtpSession, RtpSession, MediaBridge]] = []
    # Per session, what its far end encrypts with (SRTP only).
    far_ends: dict[RtpSession, pylibsrtp.Session] = {}
    for _ in range(bridges):
        caller = RtpSession("PCMA", 8, 101, caller_peer.getsockname(), ignore, ignore)
        target = RtpSession("PCMA", 8, 101, target_peer.getsockname(), ignore, ignore)
        await caller.open(ports.bind("127.0.0.1"))
        await target.open(ports.bind("127.0.0.1"))
        if srtp:
            for session in (caller, target):
                theirs = SdesKey.new()
                secure(session, SdesKey.new(), theirs)
                far_ends[session] = protector(theirs)
        bridge = MediaBridge(caller, target)
        bridge.connect()
        pairs.append((caller, target, bridge))
    payload = bytes(160)
    per_call, user_per_call = [], []
    expected = 0
    for r in range(rounds):
        for i in range(packets):
            seq = r * packets + i
            for caller, target, _ in pairs:
                for peer, session in ((caller_peer, caller), (target_peer, target)):
                    header = struct.pack("!BBHII", 0x80, 8, seq & 0xFFFF, seq * 160, 0x1234)
                    packet = header + payload
                    if srtp:
                        packet = far_ends[session].protect(packet)
                    peer.sendto(packet, ("127.0.0.1", session.local_port))
        expected += 2 * bridges * packets
        cpu, user = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
        while sum(b.to_target.relayed + b.to_caller.relayed for _, _, b in pairs) < expected:
            await asyncio.sleep(0.005)
        cpu = time.process_time() - cpu
        user = resource.getrusage(resource.RUSAGE_SELF).ru_utime - user
        per_call.append(cpu / (2 * bridges * packets) * 1e6)
        user_per_call.append(user / (2 * bridges * packets) * 1e6)
        drain(caller_peer)
        drain(target_peer)
    for caller, target, _ in pairs:
        caller.close()
        target.close()
    caller_peer.close()
    target_peer.close()
    return {
        "srtp": float(srtp),
        "bridges": float(bridges),
        "packets": float(2 * bridges * packets * rounds),
        "cpu_us_best": min(per_call),
        "cpu_us_median": statistics.median(per_call),
        "user_us_median": statistics.median(user_per_call),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bridges", type=int, default=250)
    parser.add_argument("--packets", type=int, default=20, help="per socket and round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--srtp", action="store_true", help="both legs SRTP")
    args = parser.parse_args()
    result = await run(args.bridges, args.packets, args.rounds, args.srtp)
    print(" ".join(f"{k}={v:.2f}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    try:
        if os.environ.get("OPENIVR_BENCH_LOOP") == "asyncio":
            raise ImportError
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
