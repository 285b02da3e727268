"""Bench: N concurrent SIPp calls listen to a long prompt, then press 1; RTP pacing is measured.

Run by hand:  .venv/bin/python bench/sip/concurrent_calls.py --calls 100 250 500 --hold 15
Prints, per concurrency level: calls completed, setup rate, send-interval p50/p99/max over every
packet of every call (server-side send times), and ticks the shared clock had to skip.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from openivr.audio import g711, tones
from openivr.sip.call import Dtmf, HungUp, MediaCall
from openivr.sip.media import RtpSession
from openivr.sip.server import Accept, Invite, Reject, SipServer, SipServerConfig

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_level(calls: int, hold_ms: int, rate: int) -> dict[str, float]:
    intervals: list[np.ndarray] = []
    answered: list[float] = []
    # Encoded once, as the prompt cache does for real prompts.
    prompt = g711.encode_frames(tones.beep(440.0, (hold_ms + 30_000), -12.0), "PCMU")

    async def handler(call: MediaCall) -> None:
        await call.answer()
        answered.append(time.monotonic())
        call.play(prompt, barge_in=True)
        while True:
            event = await call.next_event()
            if isinstance(event, Dtmf) and event.key == "1":
                await call.hangup()
            if isinstance(event, HungUp):
                intervals.append(np.array(call.stats.send_intervals))
                return

    async def route(invite: Invite) -> Accept | Reject:
        return Accept(handler) if invite.route_key == "100" else Reject(404)

    config = SipServerConfig(port=0, max_calls=calls + 10, rtp_ports=(20000, 29999))
    server = SipServer(route, config)
    await server.start()
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "listen_and_press.xml"
        text = (HERE / "listen_and_press.xml").read_text().replace("[hold_ms]", str(hold_ms))
        scenario.write_text(text)
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            shutil.which("sipp") or "sipp",
            f"127.0.0.1:{server.udp_port}",
            "-sf",
            str(scenario),
            "-s",
            "100",
            "-m",
            str(calls),
            "-l",
            str(calls),
            "-r",
            str(rate),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port()),
            "-nostdin",
            "-timeout",
            "600s",
            "-trace_stat",
            "-stf",
            str(Path(tmp) / "stat.csv"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=tmp,
        )
        await proc.wait()
        elapsed = time.monotonic() - started
    skipped = server.clock.skipped_ticks
    await server.stop()
    allv = np.concatenate(intervals) * 1000 if intervals else np.zeros(1)
    setup_span = (max(answered) - min(answered)) if len(answered) > 1 else 0.0
    return {
        "calls": float(calls),
        "completed": float(len(intervals)),
        "sipp_rc": float(proc.returncode or 0),
        "setup_rate_per_s": (len(answered) - 1) / setup_span if setup_span else 0.0,
        "p50_ms": float(np.percentile(allv, 50)),
        "p99_ms": float(np.percentile(allv, 99)),
        "max_ms": float(np.max(allv)),
        "skipped_ticks": float(skipped),
        "elapsed_s": elapsed,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 250, 500])
    parser.add_argument("--hold", type=float, default=15.0, help="seconds each call listens")
    parser.add_argument("--rate", type=int, default=50, help="new calls per second")
    args = parser.parse_args()
    RtpSession.keep_send_intervals = True  # the bench reports them
    for n in args.calls:
        result = await run_level(n, int(args.hold * 1000), args.rate)
        print(" ".join(f"{k}={v:.2f}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    # The event loop `openivr serve` runs on (uvicorn picks uvloop when it is installed).
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
