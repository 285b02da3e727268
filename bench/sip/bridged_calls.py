"""Bench: N concurrent bridged transfers (SIPp caller → OpenIVR → SIPp target echoing RTP).

Each caller streams 2 × 10 s of PCMA audio in 20 ms packets (a pcap this script writes, since
SIPp's bundled g711a.pcap uses 30 ms packets); the server answers, transfers to the target (bridge
mode) and relays RTP both ways; the target echoes what it gets. Measured on both legs of every
call, in ms:

- out: intervals between relayed packets' sends (server-side send times);
- in: intervals between the same streams' arrivals, from kernel receive timestamps
  (SO_TIMESTAMPNS), i.e. the jitter the relay is given (SIPp's sending plus loopback);
- relay: per relayed packet, kernel receive time → our sendto returned: the relay's own delay
  (waiting in the socket while the loop is busy, plus our handling);
- cpu: the server process's CPU time (user + system) as % of one core, over the whole run and
  over the steady part when every call is up and relaying (steady_cpu, steady_user);
  steady_preempted_per_s counts involuntary context switches (another task took our core),
  steady_others_on_core_pct is what else kept the server's core busy (other tasks, interrupts)
  and gc_pause_max_ms the longest garbage collection, to tell stalls of ours from the machine's.

`--no-timestamps` reads packets without SO_TIMESTAMPNS (the path `openivr serve` runs): only
out and cpu are measured then.

`--record` records every call as `openivr serve` does for an account that records calls
(`sip/recording.py`: the caller's leg both ways, mixed mono WAV, written as the call goes by
the writer thread, in a temporary directory): what recording costs per call is the difference
with a run without it (`--record-channels 2` for stereo files).

Run by hand:  taskset -c 0 .venv/bin/python bench/sip/bridged_calls.py --calls 100 250 400 500
(the server on core 0; the SIPp processes it starts run on core 1).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import shutil
import socket
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from openivr.audio import g711, tones
from openivr.sip.call import MediaCall
from openivr.sip.connect import Connector
from openivr.sip.media import RtpSession, RtpStats
from openivr.sip.recording import Recorder, RecordingResult
from openivr.sip.server import Accept, Invite, Reject, SipServer, SipServerConfig
from openivr.sip.transfer import TransferTarget

HERE = Path(__file__).parent
PCAP_SECONDS = 10.0
# SIPp on the second core, so the server (taskset -c 0) has the first one to itself.
SIPP_PREFIX = ["taskset", "-c", "1"] if shutil.which("taskset") and os.cpu_count() != 1 else []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_pcap(path: Path, seconds: float = PCAP_SECONDS) -> None:
    """A pcap of one RTP stream: PCMA 440 Hz, one 160-byte packet every 20 ms."""
    frames = g711.encode_frames(tones.beep(440.0, seconds * 1000, -12.0), "PCMA")
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, frame in enumerate(frames):
        rtp = struct.pack("!BBHII", 0x80, 8 | (0x80 if i == 0 else 0), i, i * 160, 0x1234)
        udp_len = 8 + len(rtp) + len(frame)
        udp = struct.pack("!HHHH", 6000, 6002, udp_len, 0) + rtp + frame
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + udp_len,
            i & 0xFFFF,
            0,
            64,
            17,
            0,
            bytes([127, 0, 0, 1]),
            bytes([127, 0, 0, 1]),
        )
        ether = b"\x00" * 12 + b"\x08\x00"
        packet = ether + ip + udp
        t = i * 0.020
        out += struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(packet), len(packet))
        out += packet
    path.write_bytes(bytes(out))


def sipp(*args: str, cwd: str) -> asyncio.Future[asyncio.subprocess.Process]:
    return asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *SIPP_PREFIX,
            shutil.which("sipp") or "sipp",
            *args,
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-nostdin",
            "-timeout",
            "300s",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=cwd,
        )
    )


def core_busy(core: int) -> float:
    """CPU seconds a core has spent busy (any task, kernel included) since boot; Linux only."""
    try:
        with open("/proc/stat") as stat:
            for line in stat:
                if line.startswith(f"cpu{core} "):
                    ticks = [int(v) for v in line.split()[1:]]
                    idle = ticks[3] + ticks[4]  # idle + iowait
                    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except OSError:
        pass
    return float("nan")


def percentiles(name: str, values: list[np.ndarray]) -> dict[str, float]:
    """p50/p99/max (ms) of the concatenated samples (seconds)."""
    joined = np.concatenate(values) * 1000 if values else np.zeros(0)
    if joined.size == 0:
        return {f"{name}_n": 0.0}
    return {
        f"{name}_n": float(joined.size),
        f"{name}_p50": float(np.percentile(joined, 50)),
        f"{name}_p99": float(np.percentile(joined, 99)),
        f"{name}_max": float(np.max(joined)),
    }


async def run_level(calls: int, rate: int, record: int = 0) -> dict[str, float]:
    gc_pauses: list[float] = []
    gc_started = [0.0]

    def gc_timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses.append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(gc_timer)
    intervals: list[np.ndarray] = []
    arrivals: list[np.ndarray] = []
    latencies: list[np.ndarray] = []
    statuses: list[str] = []
    callee_port = free_port()
    connector: Connector | None = None
    recorder = Recorder()
    results: list[RecordingResult] = []
    recordings_dir = Path(tempfile.mkdtemp(prefix="bench-recordings-"))

    async def handler(call: MediaCall) -> None:
        await call.answer()
        assert connector is not None
        recording = None
        if record:
            path = recordings_dir / f"{len(statuses) + len(results)}-{call.local_rtp_port}.wav"
            recording = recorder.start(call.rtp_session, path.stem, path, channels=record)
        target = TransferTarget("sip", f"sip:echo@127.0.0.1:{callee_port}")
        leg = await connector.connect(call, target, "+46700000001")
        statuses.append(leg.status)
        if recording is not None:
            results.append(await recorder.finish(recording))
        legs: list[RtpStats] = [call.stats]
        if leg.target_rtp is not None:
            legs.append(leg.target_rtp)
        for stats in legs:
            # Skip the first interval of each leg: the switch from ringback to relayed audio.
            intervals.append(np.array(list(stats.send_intervals)[1:]))
            arrivals.append(np.array(stats.arrival_intervals))
            latencies.append(np.array(stats.relay_latencies))

    async def route(invite: Invite) -> Accept | Reject:
        return Accept(handler)

    config = SipServerConfig(port=0, max_calls=calls + 10, rtp_ports=(30000, 39999))
    server = SipServer(route, config)
    await server.start()
    connector = Connector(server, timeout=20)
    cutter = asyncio.get_running_loop().create_task(recorder.run())
    # As `openivr serve` does once started (server.settle_heap): what exists now lives on.
    gc.collect()
    gc.freeze()
    with tempfile.TemporaryDirectory() as tmp:
        pcap = Path(tmp) / "pcma_20ms.pcap"
        write_pcap(pcap)
        caller_xml = Path(tmp) / "bridged_caller.xml"
        caller_xml.write_text(
            (HERE / "bridged_caller.xml").read_text().replace("[audio_pcap]", str(pcap))
        )
        callee = await sipp(
            "-sf",
            str(HERE / "bridged_callee.xml"),
            "-p",
            str(callee_port),
            "-mp",
            str(free_port()),
            "-rtp_echo",
            "-m",
            str(calls),
            "-l",
            str(calls + 10),
            cwd=tmp,
        )
        await asyncio.sleep(0.5)
        started = time.monotonic()
        cpu_before = time.process_time()
        load_before = os.getloadavg()[0]
        caller = await sipp(
            f"127.0.0.1:{server.udp_port}",
            "-sf",
            str(caller_xml),
            "-s",
            "100",
            "-m",
            str(calls),
            "-l",
            str(calls),
            "-r",
            str(rate),
            "-p",
            str(free_port()),
            "-mp",
            str(free_port()),
            cwd=tmp,
        )
        # CPU while all calls relay (every call set up, none ended yet): the relay's own cost.
        ramp = calls / rate + 2
        await asyncio.sleep(ramp)
        steady_cpu, steady_start = time.process_time(), time.monotonic()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        core = sorted(os.sched_getaffinity(0))[0]
        core_before = core_busy(core)
        await asyncio.sleep(max(1.0, 2 * PCAP_SECONDS - ramp - 1))
        steady_s = time.monotonic() - steady_start
        steady = (time.process_time() - steady_cpu) / steady_s
        usage_after = resource.getrusage(resource.RUSAGE_SELF)
        steady_user = (usage_after.ru_utime - usage.ru_utime) / steady_s
        # Preemptions by other tasks on our core: time the relay was ready but not running.
        preempted = (usage_after.ru_nivcsw - usage.ru_nivcsw) / steady_s
        # What else ran on our core meanwhile (other tasks, interrupts), as % of the core.
        others = (core_busy(core) - core_before) / steady_s - steady
        await caller.wait()
        elapsed = time.monotonic() - started
        cpu = time.process_time() - cpu_before
        try:
            await asyncio.wait_for(callee.wait(), 10)
        except TimeoutError:
            callee.kill()
    skipped = server.clock.skipped_ticks
    await server.stop()
    cutter.cancel()
    recorder.close()
    recorded_bytes = sum(r.size for r in results)
    recorded_seconds = sum(r.seconds for r in results)
    shutil.rmtree(recordings_dir, ignore_errors=True)
    gc.callbacks.remove(gc_timer)
    latency = np.concatenate(latencies) * 1000 if latencies else np.zeros(0)
    return {
        "calls": float(calls),
        "answered": float(statuses.count("answered")),
        "not_answered": float(len(statuses) - statuses.count("answered")),
        "caller_rc": float(caller.returncode or 0),
        **percentiles("out", intervals),
        **percentiles("in", arrivals),
        **percentiles("relay", latencies),
        "relay_over_5ms_pct": float(100 * np.mean(latency > 5)) if latency.size else 0.0,
        "cpu_pct": 100 * cpu / elapsed,
        "steady_cpu_pct": 100 * steady,
        "steady_user_pct": 100 * steady_user,
        "steady_preempted_per_s": preempted,
        "steady_others_on_core_pct": 100 * others,
        "gc_pause_max_ms": 1000 * max(gc_pauses, default=0.0),
        "skipped_ticks": float(skipped),
        "recorded": float(sum(r.status == "complete" for r in results)),
        "recording_failed": float(sum(r.status == "failed" for r in results)),
        "recorded_mb": recorded_bytes / 1e6,
        "recorded_s_per_call": recorded_seconds / max(1, len(results)),
        "elapsed_s": elapsed,
        "load1_before": load_before,
        "load1_after": os.getloadavg()[0],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 250])
    parser.add_argument("--rate", type=int, default=50, help="new calls per second")
    parser.add_argument(
        "--no-timestamps", action="store_true", help="no kernel receive timestamps (as served)"
    )
    parser.add_argument(
        "--record", action="store_true", help="record every call (mixed mono WAV), as served"
    )
    parser.add_argument(
        "--record-channels", type=int, choices=(1, 2), default=1, help="2: stereo recordings"
    )
    args = parser.parse_args()
    RtpSession.keep_send_intervals = True  # the bench reports them
    RtpSession.receive_timestamps = not args.no_timestamps
    for n in args.calls:
        result = await run_level(n, args.rate, args.record_channels if args.record else 0)
        print(" ".join(f"{k}={v:.2f}" for k, v in result.items()), flush=True)
        await asyncio.sleep(3)  # let the previous level's sockets and SIPp go away


if __name__ == "__main__":
    # The event loop `openivr serve` runs on (uvicorn picks uvloop when it is installed);
    # OPENIVR_BENCH_LOOP=asyncio compares with the standard loop.
    try:
        if os.environ.get("OPENIVR_BENCH_LOOP") == "asyncio":
            raise ImportError
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
