"""Bench: a SIP scanner at 1,000 OPTIONS/s from one address while talking calls run.

Run by hand (take the machine for it):
  flock -x /tmp/openivr-cpu.lock .venv/bin/python bench/sip/scanner.py \
      --calls 200 --hold 40 --rate 20 --scan-rate 1000

The node runs on core 0, SIPp and the scanner on core 1 (set here, as the bridged bench does).

A node (API + SIP, SQLite, default limits) runs in this process; SIPp places `--calls` calls
from 127.0.0.1 (listed in --trusted-networks, as a trunk would be) into a menu whose welcome
lasts 60 s; each caller talks the whole call (Debian's g711a.pcap speech, back to back) and
hangs up after `--hold` s. The same run is made twice: quiet, then with a scanner in a process
of its own sending OPTIONS from 127.0.0.2 at `--scan-rate` a second for as long as the calls
last. Reported per run: calls answered, the node's RTP send-interval p50/p99/max over every
call (what callers hear of the loop), skipped media ticks, and the scanner's requests sent,
answered and dropped by the node's flood limit.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import wave
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from openivr.api.app import SlashTolerance, create_app
from openivr.audio import tones
from openivr.server import LAYERS
from openivr.settings import Settings
from openivr.sip.media import RtpSession
from openivr.store.accounts import create_account
from openivr.store.db import open_database

HERE = Path(__file__).parent
PCAP = Path("/usr/share/sip-tester/g711a.pcap")
PCAP_MS = 6700
SCANNER = "127.0.0.2"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def long_prompt(seconds: int) -> bytes:
    """A WAV of a tone as long as a long announcement."""
    pcm = tones.beep(440.0, seconds * 1000, -14.0)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


class Node:
    """An OpenIVR node in a background thread, its callers' address trusted like a trunk's."""

    def __init__(self, data_dir: Path, rate_limit: float) -> None:
        self.settings = replace(
            Settings(),
            data_dir=data_dir,
            http_port=free_port(socket.SOCK_STREAM),
            sip_port=free_port(),
            rtp_ports="20000-29999",
            max_calls=5000,
            secret=secrets.token_hex(16),
            trusted_networks=("127.0.0.1",),
            sip_rate_limit=rate_limit,
        )
        self.app = create_app(self.settings, LAYERS)
        config = uvicorn.Config(
            SlashTolerance(self.app),
            host="127.0.0.1",
            port=self.settings.http_port,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.settings.http_port}"

    @property
    def sip(self) -> Any:
        return self.app.state.ctx.sip_server

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def prepare(node: Node) -> str:
    """An account whose Main menu plays a 60 s welcome; the menu's app id."""
    email = f"bench-{secrets.token_hex(3)}@example.com"

    async def make() -> Any:
        async with open_database(node.settings.effective_database_url) as (_e, sessions):
            return await create_account(sessions, email, "bench-pass")

    created = asyncio.run(make())
    with httpx.Client(base_url=node.url, timeout=60) as c:
        token = c.post(
            "/oauth/token",
            data={"grant_type": "password", "username": email, "password": "bench-pass"},
            auth=("sonetel-api", "sonetel-api"),
        ).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        base = f"/account/{created.account_id}"
        apps = c.get(f"{base}/voiceapp", headers=h).json()["response"]
        menu = next(a for a in apps if a["app_type"] == "ivr")
        prompts = c.get(f"{base}/voiceapp/{menu['app_id']}/prompt", headers=h).json()["response"]
        welcome = next(p for p in prompts if p["key"] == "welcome")
        r = c.post(
            f"/prompt/{welcome['prompt_id']}/message",
            headers=h,
            files={"file": ("long.wav", long_prompt(60), "audio/wav")},
        )
        assert r.status_code == 200, r.text
    return str(menu["app_id"])


def scan(port: int, rate: int, seconds: float, out: Any) -> None:
    """The scanner (own process): OPTIONS from SCANNER at `rate`/s for `seconds`, counting
    answers; bounded in count and time."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((SCANNER, 0))
    sock.setblocking(False)
    local = sock.getsockname()[1]
    sent = answered = 0
    start = time.monotonic()
    batch = max(1, rate // 100)  # ten-millisecond batches
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * rate) + batch
        while sent < due:
            branch = uuid.uuid4().hex[:16]
            sock.sendto(
                (
                    f"OPTIONS sip:100@127.0.0.1:{port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {SCANNER}:{local};branch=z9hG4bK{branch}\r\n"
                    f"From: <sip:scan@{SCANNER}>;tag={branch[:8]}\r\n"
                    f"To: <sip:100@127.0.0.1>\r\nCall-ID: {branch}@{SCANNER}\r\n"
                    "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                    "User-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n"
                ).encode(),
                ("127.0.0.1", port),
            )
            sent += 1
        try:
            while True:
                sock.recv(65535)
                answered += 1
        except BlockingIOError:
            pass
        time.sleep(0.01)
    out.put((sent, answered))


def _other_core() -> None:
    os.sched_setaffinity(0, {1})


def run(
    node: Node, app_id: str, calls: int, hold_s: float, rate: int, scan_rate: int
) -> dict[str, float]:
    """One run: the calls, with a scanner beside them when scan_rate > 0."""
    seen: dict[str, Any] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                seen.update(dict(node.sip.calls))
            except RuntimeError:
                pass
            time.sleep(0.2)

    rounds = max(1, int(hold_s * 1000 // PCAP_MS))
    talk = "\n".join(
        f'<nop><action><exec play_pcap_audio="{PCAP}"/></action></nop>'
        f'<pause milliseconds="{PCAP_MS}"/>'
        for _ in range(rounds)
    )
    dropped_before = node.sip.flood.dropped
    skipped_before = node.sip.clock.skipped_ticks
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    before = time.time()
    scanner = None
    results: Any = multiprocessing.Queue()
    if scan_rate:
        seconds = calls / rate + rounds * PCAP_MS / 1000 + 2
        scanner = multiprocessing.Process(
            target=scan, args=(node.settings.sip_port, scan_rate, seconds, results)
        )
        scanner.start()
        os.sched_setaffinity(scanner.pid or 0, {1})
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "talking_hold.xml"
        scenario.write_text((HERE / "talking_hold.xml").read_text().replace("[talk]", talk))
        proc = subprocess.run(
            [
                shutil.which("sipp") or "sipp",
                f"127.0.0.1:{node.settings.sip_port}",
                "-sf",
                str(scenario),
                "-s",
                app_id,
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
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp,
            preexec_fn=_other_core,
        )
    sent = answered = 0
    if scanner is not None:
        sent, answered = results.get(timeout=120)
        scanner.join(timeout=30)
    time.sleep(1.0)
    stop.set()
    watcher.join()
    mine = [
        c
        for c in seen.values()
        if c.answered_at is not None and c.answered_at.timestamp() >= before - 1
    ]
    intervals = [np.array(c.stats.send_intervals) for c in mine if c.stats.send_intervals]
    allv = np.concatenate(intervals) * 1000 if intervals else np.zeros(1)
    return {
        "calls": float(calls),
        "answered": float(len(mine)),
        "sipp_rc": float(proc.returncode),
        "p50_ms": float(np.percentile(allv, 50)),
        "p99_ms": float(np.percentile(allv, 99)),
        "max_ms": float(np.max(allv)),
        "skipped_ticks": float(node.sip.clock.skipped_ticks - skipped_before),
        "scan_sent": float(sent),
        "scan_answered": float(answered),
        "flood_dropped": float(node.sip.flood.dropped - dropped_before),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--hold", type=float, default=40.0, help="seconds each caller talks")
    parser.add_argument("--rate", type=int, default=20, help="new calls per second")
    parser.add_argument("--scan-rate", type=int, default=1000, help="scanner OPTIONS per second")
    parser.add_argument(
        "--sip-rate-limit",
        type=float,
        default=Settings().sip_rate_limit,
        help="the node's flood limit per address (a huge number: no limit, for comparison)",
    )
    args = parser.parse_args()
    RtpSession.keep_send_intervals = True  # the bench reports them
    os.sched_setaffinity(0, {0})  # the node (this process and its threads) on core 0
    with tempfile.TemporaryDirectory() as tmp:
        node = Node(Path(tmp), args.sip_rate_limit)
        try:
            app_id = prepare(node)
            print(
                "| scanner | calls | answered | sipp rc | p50 ms | p99 ms | max ms "
                "| skipped ticks | scan sent | scan answered | dropped by flood limit |"
            )
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            for scan_rate in (0, args.scan_rate):
                r = run(node, app_id, args.calls, args.hold, args.rate, scan_rate)
                label = f"{scan_rate} OPTIONS/s" if scan_rate else "none"
                print(
                    f"| {label} | {r['calls']:.0f} | {r['answered']:.0f} | {r['sipp_rc']:.0f} "
                    f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} "
                    f"| {r['skipped_ticks']:.0f} | {r['scan_sent']:.0f} "
                    f"| {r['scan_answered']:.0f} | {r['flood_dropped']:.0f} |",
                    flush=True,
                )
        finally:
            node.stop()


if __name__ == "__main__":
    main()
