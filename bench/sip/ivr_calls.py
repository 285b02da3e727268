"""Bench: SIPp calls into a real OpenIVR node's menu, listen to a long prompt, press 1.

Run by hand:  .venv/bin/python bench/sip/ivr_calls.py --calls 100 250 500 --hold 15 --rate 50
The node (API + SIP, SQLite) runs in this process; its Main menu plays a 60 s welcome and
hangs up on key 1 (SIP INFO). Reports per level: calls completed with the key acted on (from
the node's call records), setup rate, server-side RTP send-interval p50/p99/max, skipped ticks.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import wave
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from openivr.api.app import SlashTolerance, create_app
from openivr.audio import tones
from openivr.server import EXTENSIONS
from openivr.settings import Settings
from openivr.store.accounts import create_account
from openivr.store.db import open_database

HERE = Path(__file__).parent


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def long_prompt(seconds: int) -> bytes:
    """A WAV of a tone that sounds like a long announcement."""
    pcm = tones.beep(440.0, seconds * 1000, -14.0)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


class Node:
    """An OpenIVR node in a background thread."""

    def __init__(self, data_dir: Path, database_url: str = ""):
        self.settings = replace(
            Settings(),
            data_dir=data_dir,
            database_url=database_url,
            http_port=free_port(socket.SOCK_STREAM),
            sip_port=free_port(),
            rtp_ports="20000-29999",
            max_calls=5000,
            secret=secrets.token_hex(16),
            # SIPp places every call from one address, like a trunk: not a flood.
            trusted_networks=("127.0.0.1",),
        )
        self.app = create_app(self.settings, EXTENSIONS)
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
        return self.app.state.ctx.services["sip_server"]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def prepare(node: Node) -> tuple[str, str, dict[str, str]]:
    """An account whose Main menu plays a long welcome and hangs up on 1."""
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
        menu = next(
            a
            for a in c.get(f"{base}/voiceapp", headers=h).json()["response"]
            if a["app_type"] == "ivr"
        )
        c.put(
            f"{base}/voiceapp/{menu['app_id']}",
            headers=h,
            json={"menu": {"digit_1": {"action": "hangup"}}},
        )
        prompts = c.get(f"{base}/voiceapp/{menu['app_id']}/prompt", headers=h).json()["response"]
        welcome = next(p for p in prompts if p["key"] == "welcome")
        r = c.post(
            f"/prompt/{welcome['prompt_id']}/message",
            headers=h,
            files={"file": ("long.wav", long_prompt(60), "audio/wav")},
        )
        assert r.status_code == 200, r.text
    return created.account_id, menu["app_id"], h


def run_level(
    node: Node,
    account_id: str,
    app_id: str,
    headers: dict[str, str],
    calls: int,
    hold_ms: int,
    rate: int,
) -> dict[str, float]:
    seen: dict[str, Any] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                seen.update(dict(node.sip.calls))
            except RuntimeError:
                pass
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    before = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "listen_and_press.xml"
        scenario.write_text(
            (HERE / "listen_and_press.xml").read_text().replace("[hold_ms]", str(hold_ms))
        )
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
        )
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
    answered = sorted(c.answered_at.timestamp() for c in mine)
    span = answered[-1] - answered[0] if len(answered) > 1 else 0.0
    with httpx.Client(base_url=node.url, timeout=60) as c:
        records = c.get(f"/account/{account_id}/call?limit=1000", headers=headers).json()[
            "response"
        ]
    acted = sum(
        1
        for r in records
        if r["keys"] == "1"
        and r["outcome"] == "hangup"
        and r["ended_by"] == "us"
        and r["start_time"] >= time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime(before - 1))
    )
    return {
        "calls": float(calls),
        "key_acted_on": float(acted),
        "sipp_rc": float(proc.returncode),
        "setup_rate_per_s": (len(answered) - 1) / span if span else 0.0,
        "p50_ms": float(np.percentile(allv, 50)),
        "p99_ms": float(np.percentile(allv, 99)),
        "max_ms": float(np.max(allv)),
        "skipped_ticks": float(node.sip.clock.skipped_ticks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 250, 500])
    parser.add_argument("--hold", type=float, default=15.0, help="seconds each call listens")
    parser.add_argument("--rate", type=int, default=50, help="new calls per second")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = Node(Path(tmp) / "data", args.database_url)
        try:
            account_id, app_id, headers = prepare(node)
            print(
                "| calls | key acted on | sipp rc | setup/s | p50 ms | p99 ms | max ms | skipped ticks |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for calls in args.calls:
                r = run_level(
                    node, account_id, app_id, headers, calls, int(args.hold * 1000), args.rate
                )
                print(
                    f"| {calls} | {r['key_acted_on']:.0f} | {r['sipp_rc']:.0f} | {r['setup_rate_per_s']:.0f} | "
                    f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | {r['skipped_ticks']:.0f} |",
                    flush=True,
                )
        finally:
            node.stop()


if __name__ == "__main__":
    main()
