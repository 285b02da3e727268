"""Bench: CPU per talking call of the media path alone (no SIP, no engine), for comparing changes.

    taskset -c 0 .venv/bin/python bench/sip/media_cpu.py --calls 1000 --seconds 10

N RTP sessions on the shared media clock, each sending a prompt's PCMA (20 ms packets) and
receiving a caller's PCMA stream from a sender process on the other core (50 packets/s per
call, every call's stream on its own socket, as a phone's). Callers receive nothing back (our
packets go to one port nobody reads, as SIPp's media port in the IVR bench). Reports the media
process's CPU (user + system) as % of a core and per call, and the clock's lag. CPU time is
far steadier than latency on a shared machine, so this compares code changes when the node's
core is not quiet; `ivr_calls.py` gives the wall-clock picture with real SIP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import shutil
import socket
import subprocess
import sys
import time

from openivr.audio import g711, tones
from openivr.sip.clock import MediaClock
from openivr.sip.media import RtpSession
from openivr.sip.rtp import RtpPacket

SENDER = r"""
import socket, struct, sys, time
ports = [int(p) for p in sys.argv[1].split(",")]
seconds = float(sys.argv[2])
socks = []
for port in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.connect(("127.0.0.1", port))
    socks.append(s)
payload = bytes([0xD5]) * 160
start = time.monotonic()
n = 0
# Spread the calls over the 20 ms as phones' clocks are: a slice of them every 2 ms.
slices = 10
while time.monotonic() - start < seconds:
    for k in range(slices):
        due = start + n * 0.020 + k * 0.002
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        header = struct.pack("!BBHII", 0x80, 8, n & 0xFFFF, n * 160, 0x1234)
        packet = header + payload
        for s in socks[k::slices]:
            try:
                s.send(packet)
            except OSError:
                pass
    n += 1
"""


async def run(calls: int, seconds: float, audio_wanted: bool) -> dict[str, float]:
    """Run `calls` sessions for `seconds` with callers streaming; CPU and lag."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    frames = g711.encode_frames(tones.beep(440.0, 60_000, -14.0), "PCMA")
    received = [0]

    def on_audio(packet: RtpPacket) -> None:
        received[0] += 1  # with audio not wanted, only events come here: see packets_received

    clock = MediaClock()
    sessions = []
    for _ in range(calls):
        session = RtpSession("PCMA", 8, 101, sink.getsockname(), on_audio, on_audio)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        await session.open(sock)
        # As a menu call with RFC 4733 and no recording, unless --audio-wanted (in-band keys,
        # a recording): then every audio packet is parsed and handed on.
        session.audio_wanted = audio_wanted
        session.play(frames, lambda: None)
        clock.add(session)
        sessions.append(session)
    ports = ",".join(str(s.local_port) for s in sessions)
    prefix = ["taskset", "-c", "1"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    sender = subprocess.Popen([*prefix, sys.executable, "-c", SENDER, ports, str(seconds + 3)])
    await asyncio.sleep(2.0)  # the streams settle
    cpu0, wall0 = time.process_time(), time.monotonic()
    got0 = sum(s.stats.packets_received for s in sessions)
    sent0 = sum(s.stats.packets_sent for s in sessions)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    late0, lag_count0, lag_sum0 = clock.late_ticks, clock.lag_count, clock.lag_sum
    clock.lag_max = 0.0
    await asyncio.sleep(seconds)
    wall = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    got = sum(s.stats.packets_received for s in sessions) - got0
    sent = sum(s.stats.packets_sent for s in sessions) - sent0
    sender.wait()
    for session in sessions:
        clock.remove(session)
        session.close()
    sink.close()
    return {
        "calls": float(calls),
        "cpu_pct": 100 * cpu / wall,
        "user_pct": 100 * (usage.ru_utime - usage0.ru_utime) / wall,
        "sys_pct": 100 * (usage.ru_stime - usage0.ru_stime) / wall,
        "cpu_us_per_call_s": 1e6 * cpu / wall / calls,
        "received_per_s": got / wall,
        "sent_per_s": sent / wall,
        "cpu_us_per_packet": 1e6 * cpu / max(1, got + sent),
        "lag_mean_ms": 1000 * (clock.lag_sum - lag_sum0) / max(1, clock.lag_count - lag_count0),
        "lag_max_ms": 1000 * clock.lag_max,
        "late_ticks": float(clock.late_ticks - late0),
        "preempted_per_s": (usage.ru_nivcsw - usage0.ru_nivcsw) / wall,
    }


def main() -> None:
    logging.getLogger("openivr.sip.clock").setLevel(logging.ERROR)  # lag is reported here
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, nargs="+", default=[1000])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--audio-wanted", action="store_true", help="calls that look at audio")
    parser.add_argument(
        "--read-all-audio",
        action="store_true",
        help="no kernel audio filter: every packet is read (the path off Linux, and before)",
    )
    args = parser.parse_args()
    RtpSession.filter_audio = RtpSession.filter_audio and not args.read_all_audio

    async def all_levels() -> None:
        for calls in args.calls:
            result = await run(calls, args.seconds, args.audio_wanted)
            print(json.dumps({k: round(v, 2) for k, v in result.items()}), flush=True)

    try:
        import uvloop

        uvloop.run(all_levels())
    except ImportError:
        asyncio.run(all_levels())


if __name__ == "__main__":
    main()
