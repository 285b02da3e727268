"""Bench: talking SIPp callers call a real OpenIVR node's menu, listen, press 1; the node hangs up.

Run by hand (node on core 0; SIPp, tcpdump and the API clients this script starts on core 1):

    flock -x /tmp/openivr-cpu.lock taskset -c 0 .venv/bin/python bench/sip/ivr_calls.py \\
        --calls 300 --hold 20 --rate 50 [--keys rfc4733|info|inband] [--api-mix both]

The node (API + SIP, SQLite, uvloop as `openivr serve`) runs in this process; its Main menu plays
a 60 s welcome and hangs up on key 1. Callers stream speech for the whole call and press 1
after `--hold` seconds, by RFC 4733 events in their stream (default), SIP INFO or an in-band tone
(`talking.py`: SIPp's `rtp_stream`, a few threads for all calls, so the callers fit on one core);
`--silent` gives the old callers that send no audio and press 1 by SIP INFO.

Reported per level (one line of key=value):
- key_acted_on: calls whose record says key 1 and hang-up by us (the node's call records);
- setup_per_s: answers per second over the ramp; with `--churn S`, calls keep arriving for S more
  seconds as earlier ones end, and setup_full_per_s is the answer rate while >= 95 % of the
  level was up, with life_p50/p99_s (answer to our hang-up) and answer_wait_p50/p99_ms (INVITE
  to answer), which say what paced it;
- send_*: intervals between our RTP sends, per call, at the node (p50/p99/max ms);
- callers_*: intervals between our packets as the callers' side of loopback sees them (tcpdump,
  kernel timestamps): p50/p99/max ms and the share over 25 ms;
- steady_cpu_pct and cpu_per_call_pct: the node's CPU while every call of the level was up;
  steady_others_on_core_pct / steady_preempted_per_s: what else ran on the node's core;
- skipped_ticks, late_ticks (> 10 ms), lag_max_ms: the media clock's own lag monitor;
  gc_pause_max_ms: the longest garbage collection; send_errors: sends the kernel refused;
- with `--where` (`where.py`): long_ticks (whose own work took >= 5 ms), tick_work_max_ms and
  the CPU the loop's thread spent in that tick, and `worst`: the worst moments (intervals over
  25 ms ending within one tick), each with how many calls it hit, where it fell in a call
  (seconds after the answer, which prompt) and what the clock did then;
- sipp_cpu_pct (100 = one core), sipp_us_per_call_s and sipp_threads: the callers' SIPp while
  every call was up; sipp_cpu_s: its CPU over the whole level; callers_core_pct: how busy the
  callers' core was (SIPp, tcpdump, the API mix and anything else on it). Above ~90 % the
  callers, not the node, set the pace.

`--api-mix on` runs `api_mix.py` against the node during the level (token requests right and
wrong, uploads, simulate as audio, TTS, big call lists, voicemail downloads) and adds its
counts; `--api-mix both` runs each level without and then with the mix.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
import uvloop
from fastapi import FastAPI

from openivr import loopwatch
from openivr.api.app import SlashTolerance, create_app
from openivr.audio import tones
from openivr.context import ServerContext
from openivr.delivery.deposit import deposit_voicemail
from openivr.processes import yield_cpu
from openivr.server import LAYERS, MEDIA_LAYERS
from openivr.settings import Settings
from openivr.sip import clock as media_clock
from openivr.sip.media import RtpSession
from openivr.store.accounts import create_account
from openivr.store.db import open_database
from openivr.store.models import CallRecord

sys.path.insert(0, str(Path(__file__).parent))
import where  # noqa: E402
from talking import (  # noqa: E402
    CORE1,
    Capture,
    caller_scenario,
    process_cpu,
    process_threads,
    sipp_command,
    wait_cpu,
)

HERE = Path(__file__).parent
RTP_PORTS = (20000, 29999)


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


class Node:
    """An OpenIVR node as `openivr serve` runs it, with its media side in this process.

    `split` (the default, as `openivr serve` runs on Linux: `--workers 1`): this process is the media process
    (SIP, RTP, calls; its loop in a background thread) and the API is a real `openivr serve
    --workers 0 --sip-port 0` process beside it, on the same core (taskset is inherited), at
    the CPU priority `--workers 1` gives its API process (`processes.yield_cpu`, SCHED_IDLE).
    `one` (`--workers 0`): API and SIP share one loop in this process. With `api=False` the
    split node has no API process (the media side alone); `layers` start before the media's. Either way the node
    trusts 127.0.0.1 as a balancer (SIPp places every call from one address, like a trunk; the
    API mix's clients send X-Forwarded-For like one).
    """

    def __init__(
        self,
        data_dir: Path,
        database_url: str = "",
        processes: str = "split",
        debug: bool = False,
        api: bool = True,
        layers: tuple[Any, ...] = (),
    ):
        self.settings = replace(
            Settings(),
            data_dir=data_dir,
            database_url=database_url,
            http_port=free_port(socket.SOCK_STREAM),
            sip_port=free_port(),
            rtp_ports=f"{RTP_PORTS[0]}-{RTP_PORTS[1]}",
            max_calls=5000,
            secret=secrets.token_hex(16),
            workers=0,
            loop_debug=debug,
            # SIPp places every call from one address, like a trunk: not a flood.
            trusted_networks=("127.0.0.1",),
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self.api: subprocess.Popen[bytes] | None = None
        self.api_priority = ""
        self.url = f"http://127.0.0.1:{self.settings.http_port}"

        async def keep_loop(_app: FastAPI, _ctx: ServerContext, _stack: Any) -> None:
            self.loop = asyncio.get_running_loop()

        if processes == "one":
            self.app = create_app(self.settings, (keep_loop, *LAYERS))
            config = uvicorn.Config(
                SlashTolerance(self.app),
                host="127.0.0.1",
                port=self.settings.http_port,
                log_level="warning",
                lifespan="on",
            )
            self.server: uvicorn.Server | None = uvicorn.Server(config)
            self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
            self.thread = threading.Thread(target=self.server.run, daemon=True)
            self.thread.start()
            while not self.server.started:
                time.sleep(0.05)
            return
        self.server = None
        self.app = create_app(self.settings, (keep_loop, *layers, *MEDIA_LAYERS))
        self._stop: asyncio.Event | None = None
        ready = threading.Event()

        async def media() -> None:
            self._stop = asyncio.Event()
            async with self.app.router.lifespan_context(self.app):
                ready.set()
                await self._stop.wait()

        self.thread = threading.Thread(target=uvloop.run, args=(media(),), daemon=True)
        self.thread.start()
        ready.wait(120)
        if not api:
            return
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIVR_")}
        command = [str(Path(sys.executable).with_name("openivr")), "serve"]
        self.api = subprocess.Popen(
            [
                *command,
                "--data-dir",
                str(data_dir),
                "--secret",
                self.settings.secret,
                "--http-port",
                str(self.settings.http_port),
                "--sip-port",
                "0",
                "--workers",
                "0",
                "--trusted-networks",
                "127.0.0.1",
                *(["--database-url", database_url] if database_url else []),
            ],  # fmt: skip
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(600):
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.api_priority = yield_cpu(self.api.pid)

    @property
    def ctx(self) -> ServerContext:
        return self.app.state.ctx  # type: ignore[no-any-return]

    @property
    def sip(self) -> Any:
        return self.ctx.sip_server

    def api_cpu(self) -> float:
        """CPU seconds of the API process (0 when the API runs in this process)."""
        return 0.0 if self.api is None else process_cpu(self.api.pid)

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the node's loop and wait for it."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=300)

    def stop(self) -> None:
        if self.api is not None:
            self.api.terminate()
            self.api.wait(30)
        if self.server is not None:
            self.server.should_exit = True
        elif self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout=30)


def prepare(node: Node, old_records: int) -> dict[str, Any]:
    """An account whose Main menu plays a long welcome and hangs up on 1, plus what the API
    mix needs: a second menu to upload to, voicemail messages and old call records."""
    email, password = f"bench-{secrets.token_hex(3)}@example.com", "bench-pass"

    async def make() -> Any:
        async with open_database(node.settings.effective_database_url) as (_e, sessions):
            created = await create_account(sessions, email, password)
            now = datetime.now(UTC) - timedelta(days=1)
            async with sessions() as db, db.begin():
                for i in range(old_records):
                    at = now - timedelta(seconds=30 * i)
                    db.add(
                        CallRecord(
                            call_id=f"old-{i}@bench",
                            account_id=created.account_id,
                            from_number="+46701234567",
                            to_number="*21",
                            apps=["VAbench"],
                            keys="1",
                            outcome="hangup",
                            detail={"menu": "Main menu"},
                            sip_status=200,
                            ended_by="us",
                            started_at=at,
                            answered_at=at,
                            ended_at=at + timedelta(seconds=25),
                        )
                    )
            return created

    created = asyncio.run(make())
    with httpx.Client(base_url=node.url, timeout=120) as c:
        token = c.post(
            "/oauth/token",
            data={"grant_type": "password", "username": email, "password": password},
            auth=("sonetel-api", "sonetel-api"),
        ).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        base = f"/account/{created.account_id}"
        apps = c.get(f"{base}/voiceapp", headers=h).json()["response"]
        menu = next(a for a in apps if a["app_type"] == "ivr")
        mailbox = next(a for a in apps if a["app_type"] == "mailbox")
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
        other = c.post(
            f"{base}/voiceapp", headers=h, json={"app_type": "ivr", "name": "Upload target"}
        ).json()["response"]
        other_prompts = c.get(f"{base}/voiceapp/{other['app_id']}/prompt", headers=h).json()
        upload_prompt = next(p for p in other_prompts["response"] if p["key"] == "welcome")

    async def leave_messages() -> list[str]:
        ids = []
        for i in range(20):
            ids.append(
                await deposit_voicemail(
                    node.ctx,
                    account_id=created.account_id,
                    app_id=mailbox["app_id"],
                    caller=f"+4670123{i:04d}",
                    dialed="*23",
                    pcm=tones.beep(300.0 + 10 * i, 20_000, -20.0),
                    call_id=f"vm-{i}@bench",
                )
            )
        return ids

    messages = node.run(leave_messages())
    return {
        "url": node.url,
        "account_id": created.account_id,
        "email": email,
        "password": password,
        "token": token,
        "app_id": menu["app_id"],
        "simulate_app": menu["app_id"],
        "upload_prompt": upload_prompt["prompt_id"],
        "voicemail_paths": [
            f"{base}/voiceapp/{mailbox['app_id']}/voicemail/{m}/audio" for m in messages
        ],
    }


def scenario(tmp: Path, args: argparse.Namespace) -> Path:
    """The SIPp scenario (and the callers' audio) for this run's key mode."""
    if args.silent:
        path = tmp / "caller.xml"
        text = (HERE / "listen_and_press.xml").read_text()
        path.write_text(text.replace("[hold_ms]", str(int(args.hold * 1000))))
        return path
    return caller_scenario(tmp, args.keys, args.hold)


def run_level(node: Node, env: dict[str, Any], args: argparse.Namespace, calls: int, mix: bool) -> dict[str, float]:  # fmt: skip
    seen: dict[str, Any] = {}
    stop = threading.Event()
    rate, hold = args.rate, args.hold
    total = calls + int(rate * args.churn)

    def watch() -> None:
        while not stop.is_set():
            try:
                seen.update(dict(node.sip.calls))
            except RuntimeError:
                pass
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    clock = node.sip.clock
    base = (clock.skipped_ticks, clock.late_ticks)
    clock.lag_max = 0.0
    loopwatch.activity.gc_pause_max = 0.0
    before, started = time.time(), time.monotonic()
    ramp = calls / rate
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        xml = scenario(tmp, args)
        media_port = free_port()
        capture = Capture(tmp / "callers.pcap", media_port, RTP_PORTS)
        time.sleep(0.5)
        mixer = None
        if mix:
            cfg = dict(env, seconds=ramp + hold + args.churn, trusted=not args.one_stuffer)
            mixer = subprocess.Popen(
                [*CORE1, sys.executable, str(HERE / "api_mix.py"), json.dumps(cfg)],
                stdout=subprocess.PIPE,
            )
        sipp = subprocess.Popen(
            [
                *CORE1,
                *sipp_command(
                    f"127.0.0.1:{node.settings.sip_port}",
                    xml,
                    env["app_id"],
                    calls=total,
                    limit=total if args.unlimited else calls,
                    rate=rate,
                    ports=(free_port(), media_port),
                ),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp,
        )
        # The steady window: every call of the level up (after the ramp, before the first key).
        time.sleep(ramp + 1.0)
        window = max(1.0, (hold + args.churn) - ramp - 2.0)
        cpu0, wall0, api0 = time.process_time(), time.monotonic(), node.api_cpu()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        core = sorted(os.sched_getaffinity(0))[0]
        core0 = core_busy(core)
        up_at_start = len(node.sip.calls)
        sipp0, sipp_threads = process_cpu(sipp.pid), process_threads(sipp.pid)
        callers_core0 = core_busy(int(CORE1[-1])) if CORE1 else float("nan")
        time.sleep(window)
        steady_s = time.monotonic() - wall0
        sipp_steady = (process_cpu(sipp.pid) - sipp0) / steady_s
        callers_core = (core_busy(int(CORE1[-1])) - callers_core0) / steady_s if CORE1 else None
        steady = (time.process_time() - cpu0) / steady_s
        api_cpu = (node.api_cpu() - api0) / steady_s
        usage_after = resource.getrusage(resource.RUSAGE_SELF)
        others = (core_busy(core) - core0) / steady_s - steady - api_cpu
        up_at_end = len(node.sip.calls)
        sipp_cpu = wait_cpu(sipp)
        callers = capture.stop()
        mixed: dict[str, Any] = {}
        if mixer is not None:
            out, _ = mixer.communicate(timeout=300)
            mixed = json.loads(out.decode().strip().splitlines()[-1])
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
    ramp_answers = answered[:calls]
    span = ramp_answers[-1] - ramp_answers[0] if len(ramp_answers) > 1 else 0.0
    result: dict[str, Any] = {
        "calls": float(calls),
        "total": float(total),
        "answered": float(len(mine)),
        "sipp_rc": float(sipp.returncode),
        "setup_per_s": (len(ramp_answers) - 1) / span if span else 0.0,
    }
    if args.churn:
        ends = sorted(c.ended_at.timestamp() for c in mine if c.ended_at is not None)
        full = [t for t in answered if _up(answered, ends, t) >= 0.95 * calls]
        if len(full) > 1:
            result["setup_full_per_s"] = (len(full) - 1) / (full[-1] - full[0])
        # What paces the answers while the level is full: how long calls lived (answer to our
        # hang-up) and how long a caller waited for its answer (INVITE seen to answer).
        lives = [
            (c.ended_at - c.answered_at).total_seconds()
            for c in mine
            if c.ended_at is not None and c.answered_at is not None
        ]
        waits = [(c.answered_at - c.started_at).total_seconds() * 1000 for c in mine]
        if lives:
            result["life_p50_s"] = float(np.percentile(lives, 50))
            result["life_p99_s"] = float(np.percentile(lives, 99))
        if waits:
            result["answer_wait_p50_ms"] = float(np.percentile(waits, 50))
            result["answer_wait_p99_ms"] = float(np.percentile(waits, 99))
    with httpx.Client(base_url=node.url, timeout=120) as c:
        records = c.get(
            f"/account/{env['account_id']}/call?limit=1000&since="
            + datetime.fromtimestamp(before - 1, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            headers={"Authorization": f"Bearer {env['token']}"},
        ).json()["response"]
    result["key_acted_on"] = float(
        sum(
            1
            for r in records
            if r["keys"] == "1" and r["outcome"] == "hangup" and r["ended_by"] == "us"
        )  # fmt: skip
    )
    result.update(
        {
            "send_p50_ms": float(np.percentile(allv, 50)),
            "send_p99_ms": float(np.percentile(allv, 99)),
            "send_max_ms": float(np.max(allv)),
            **callers,
            "up_in_window": float(min(up_at_start, up_at_end)),
            "steady_cpu_pct": 100 * steady,
            "steady_api_cpu_pct": 100 * api_cpu,
            "cpu_per_call_pct": 100 * steady / max(1, min(up_at_start, up_at_end)),
            "steady_preempted_per_s": (usage_after.ru_nivcsw - usage.ru_nivcsw) / steady_s,
            "steady_others_on_core_pct": 100 * others,
            # The callers: SIPp's CPU while every call was up (100 = one core), per call-second,
            # its threads then, its CPU over the whole level, and all the callers' core did.
            "sipp_cpu_pct": 100 * sipp_steady,
            "sipp_us_per_call_s": 1e6 * sipp_steady / max(1, min(up_at_start, up_at_end)),
            "sipp_threads": float(sipp_threads),
            "sipp_cpu_s": sipp_cpu,
            **({} if callers_core is None else {"callers_core_pct": 100 * callers_core}),
            "skipped_ticks": float(clock.skipped_ticks - base[0]),
            "late_ticks": float(clock.late_ticks - base[1]),
            "lag_max_ms": 1000 * clock.lag_max,
            "gc_pause_max_ms": 1000 * loopwatch.activity.gc_pause_max,
        }
    )
    result["send_errors"] = float(sum(c.stats.send_errors for c in mine))
    if args.where:
        result.update(where.tick_summary(started))
        result["worst"] = where.worst(mine)  # type: ignore[assignment]
    if mixed:
        result["api_mix"] = mixed
    return result


def _up(answered: list[float], ends: list[float], t: float) -> int:
    """Calls up at time t: answered by then and not yet ended."""
    return int(np.searchsorted(answered, t, "right") - np.searchsorted(ends, t, "right"))


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 250, 500])
    parser.add_argument("--hold", type=float, default=15.0, help="seconds before the key")
    parser.add_argument("--rate", type=int, default=50, help="new calls per second")
    parser.add_argument("--keys", choices=("rfc4733", "info", "inband"), default="rfc4733")
    parser.add_argument("--silent", action="store_true", help="callers send no audio (SIP INFO)")
    parser.add_argument("--churn", type=float, default=0.0, help="seconds of new calls at full")
    parser.add_argument(
        "--unlimited",
        action="store_true",
        help="SIPp keeps calling at --rate whatever is up (no -l of --calls): with --churn, the"
        " level is then rate x hold",
    )
    parser.add_argument("--api-mix", choices=("off", "on", "both"), default="off")
    parser.add_argument("--old-records", type=int, default=1000, help="call records to list")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp dir")
    parser.add_argument("--loop-debug", action="store_true", help="name slow callbacks")
    parser.add_argument(
        "--one-stuffer",
        action="store_true",
        help="wrong passwords for one name from one address (refused 429 after a few)",
    )
    parser.add_argument(
        "--processes",
        choices=("split", "one"),
        default="split",
        help="split: the API in its own process, as `openivr serve`; one: --workers 0",
    )
    parser.add_argument(
        "--heap-age",
        type=float,
        default=None,
        help="seconds after which the media clock freezes objects (default: the node's)",
    )
    parser.add_argument(
        "--read-all-audio",
        action="store_true",
        help="no kernel audio filter: every packet is read (the path off Linux, and before)",
    )
    parser.add_argument(
        "--where",
        action="store_true",
        help="place the worst send intervals in their calls (where.py) and time each tick",
    )
    args = parser.parse_args()
    if args.where:
        where.install()
    RtpSession.keep_send_intervals = True  # the bench reports them
    RtpSession.filter_audio = RtpSession.filter_audio and not args.read_all_audio
    if args.heap_age is not None:
        media_clock.HEAP_AGE = args.heap_age
    with tempfile.TemporaryDirectory() as tmp:
        node = Node(Path(tmp) / "data", args.database_url, args.processes, args.loop_debug)
        try:
            env = prepare(node, args.old_records)
            # A node's first call loads the account's snapshot and the 60 s prompt's frames;
            # the levels measure a warm node.
            warm = argparse.Namespace(**{**vars(args), "hold": 2.0, "rate": 5, "churn": 0.0})
            run_level(node, env, warm, 5, False)
            mixes = {"off": [False], "on": [True], "both": [False, True]}[args.api_mix]
            for calls in args.calls:
                for mix in mixes:
                    r = run_level(node, env, args, calls, mix)
                    r["keys"] = "silent" if args.silent else args.keys  # type: ignore[assignment]
                    r["processes"] = args.processes  # type: ignore[assignment]
                    if args.processes == "split":
                        r["api_priority"] = node.api_priority  # type: ignore[assignment]
                    r["api_mix"] = r.get("api_mix", "off")
                    print(json.dumps(_rounded(r)), flush=True)
                    time.sleep(3)  # let the level's sockets and SIPp go away
        finally:
            node.stop()


if __name__ == "__main__":
    main()
