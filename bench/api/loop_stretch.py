"""Bench: how long each kind of API request holds the event loop that also paces every call's RTP.

Run: .venv/bin/python bench/api/loop_stretch.py [--seconds 8] [--kinds call_list upload ...]

A real node as `openivr serve --workers 0` runs it (API and SIP on one uvloop, SQLite) in a
thread of this process, with the account, 1,000 old call records and voicemail messages the
talking-caller bench's API mix uses (`bench/sip/api_mix.py`, which also sends the requests here,
one kind at a time, from a separate process). A 1 ms ticker on the node's loop reads the loop
thread's own CPU time (`time.thread_time`) at each wake-up: the CPU spent between two wake-ups
is a stretch the loop ran something else without a break, i.e. how late a media tick due in it
would start on an idle core. Being CPU time of that one thread, it does not change when other
processes load the machine, so old and new code compare on a busy machine. Wall-clock lateness
of the ticker is reported too (what also includes waiting for the GIL and for the CPU).

Prints per kind: requests answered, the longest stretches (CPU ms), the share of 1 ms wake-ups
whose stretch was over 5 ms, the ticker's p99/max wall lateness and the longest garbage
collection (a stretch of its own, whatever request left the garbage).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from openivr import loopwatch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "sip"))
from ivr_calls import Node, prepare  # noqa: E402

KINDS = ("token_wrong", "token_right", "upload", "simulate_wav", "tts", "call_list", "voicemail")


class Ticker:
    """A 1 ms ticker on the node's loop: CPU of the loop thread and wall lateness per wake-up."""

    def __init__(self) -> None:
        self.cpu: list[float] = []
        self.late: list[float] = []
        self.running = True

    async def run(self) -> None:
        last_cpu = time.thread_time()
        while self.running:
            due = time.perf_counter() + 0.001
            await asyncio.sleep(0.001)
            now_cpu = time.thread_time()
            self.cpu.append(now_cpu - last_cpu)
            self.late.append(time.perf_counter() - due)
            last_cpu = now_cpu

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        cpu, late = np.array(self.cpu) * 1000, np.array(self.late) * 1000
        self.cpu.clear()
        self.late.clear()
        return cpu, late


def main() -> None:
    """Measure each kind in turn; one line per kind."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--old-records", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = Node(Path(tmp), args.database_url, processes="one")
        try:
            env = prepare(node, args.old_records)
            ticker = Ticker()
            assert node.loop is not None
            task = asyncio.run_coroutine_threadsafe(ticker.run(), node.loop)
            time.sleep(1.0)
            cpu, _late = ticker.take()
            print(f"idle: wake-ups {cpu.size}, longest stretch {cpu.max():.2f} ms CPU")
            for kind in args.kinds:
                cfg = dict(env, seconds=args.seconds, kinds=[kind])
                ticker.take()
                loopwatch.activity.gc_pause_max = 0.0
                out = subprocess.run(
                    [sys.executable, str(HERE.parent / "sip" / "api_mix.py"), json.dumps(cfg)],
                    capture_output=True,
                    check=True,
                    text=True,
                ).stdout
                cpu, late = ticker.take()
                result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])[kind]
                top = np.sort(cpu)[-3:][::-1]
                print(
                    f"{kind:>13}: {result['requests']:>4} requests {result['statuses']}, "
                    f"longest stretches {', '.join(f'{v:.1f}' for v in top)} ms CPU, "
                    f"over 5 ms {np.mean(cpu > 5) * 100:.2f} % of wake-ups, "
                    f"CPU on the loop {cpu.sum() / args.seconds / 10:.0f} %, "
                    f"ticker late p99 {np.percentile(late, 99):.1f} max {late.max():.1f} ms, "
                    f"longest GC {loopwatch.activity.gc_pause_max * 1000:.1f} ms",
                    flush=True,
                )
            ticker.running = False
            task.result(timeout=5)
        finally:
            node.stop()


if __name__ == "__main__":
    main()
