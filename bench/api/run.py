"""Requests per second and latency of the configuration API under 32 concurrent clients.

Run: .venv/bin/python bench/api/run.py [--seconds 10] [--concurrency 32]
                                       [--database-url postgresql+asyncpg://...]
                                       [--server-cpu 0 --client-cpu 1] [--profile DIR]

Starts a real `openivr serve` process (one uvicorn worker) pinned to --server-cpu with taskset,
creates an account with `openivr account create`, logs in, and then measures, each for
--seconds: GET /healthz, GET /account/{id}/voiceapp/{app} (the default "Main menu") and PUT of
that app (its name alternates, a small change). The load generator is this process, pinned
to --client-cpu: a small asyncio HTTP/1.1 client on keep-alive connections, because httpx
costs about as much CPU per request as the server does and would measure itself instead.
CPU columns are the share of one core each side used (from /proc), so a saturated load
generator shows up as client CPU near 100 %.

--profile DIR records the server with py-spy (pip install py-spy) during each phase and
writes DIR/<phase>.txt (top functions by own time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def openivr_command() -> list[str]:
    """The `openivr` command of this interpreter's environment."""
    sibling = Path(sys.executable).with_name("openivr")
    return [str(sibling)] if sibling.exists() else [sys.executable, "-m", "openivr.cli"]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Node:
    """The server process under test and what the bench needs from it."""

    process: subprocess.Popen[bytes]
    port: int
    account_id: str
    app_id: str
    token: str
    log: Path


def _http(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, object]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return dict(json.loads(answer.read()))


def start_node(workdir: Path, database_url: str, server_cpu: int | None) -> Node:
    """Start `openivr serve` (pinned with taskset), create an account and log in."""
    port = free_port()
    data_dir = workdir / "data"
    store = ["--data-dir", str(data_dir)]
    if database_url:
        store += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIVR_")}
    pin = ["taskset", "-c", str(server_cpu)] if server_cpu is not None else []
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *pin,
                *openivr_command(),
                "serve",
                *store,
                "--http-port",
                str(port),
                "--sip-port",
                "0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"openivr serve did not start:\n{log.read_text()}")
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2).close()
            break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    email, password = f"bench-{port}@example.com", "bench-password"
    created = subprocess.run(
        [*openivr_command(), "account", "create", "--email", email, "--password", password, *store],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    account_id = json.loads(created.stdout)["account_id"]
    form = urllib.parse.urlencode(
        {"grant_type": "password", "username": email, "password": password}
    ).encode()
    token = str(
        _http(
            "POST",
            base + "/oauth/token",
            form,
            {
                "Authorization": "Basic c29uZXRlbC1hcGk6c29uZXRlbC1hcGk=",  # sonetel-api:sonetel-api
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )["access_token"]
    )
    apps = _http(
        "GET", f"{base}/account/{account_id}/voiceapp", None, {"Authorization": f"Bearer {token}"}
    )["response"]
    assert isinstance(apps, list)
    app_id = next(a["app_id"] for a in apps if a["name"] == "Main menu")
    return Node(process, port, account_id, app_id, token, log)


@dataclass
class Phase:
    """One measured request kind."""

    name: str
    request: Callable[[int], bytes]  # n-th request of a connection -> raw HTTP/1.1 bytes
    concurrency: int = 0  # 0: the --concurrency flag
    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0


def raw_request(method: str, path: str, token: str, body: bytes = b"") -> bytes:
    """An HTTP/1.1 keep-alive request as bytes."""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _connection(port: int, phase: Phase, stop_at: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.perf_counter() < stop_at:
            data = phase.request(n)
            n += 1
            started = time.perf_counter()
            writer.write(data)
            status = await _read_response(reader)
            phase.latencies.append(time.perf_counter() - started)
            if status >= 300:
                phase.errors[status] = phase.errors.get(status, 0) + 1
    finally:
        writer.close()


async def run_phase(node: Node, phase: Phase, concurrency: int, seconds: float) -> None:
    """Keep `concurrency` connections busy for `seconds`; record latencies and CPU."""
    # A short warm-up so connection set-up and first-request costs are not measured.
    await asyncio.gather(
        *(
            _connection(node.port, Phase("warm", phase.request), time.perf_counter() + 0.5)
            for _ in range(concurrency)
        )
    )
    server0, client0 = cpu_seconds(node.process.pid), cpu_seconds(os.getpid())
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(node.port, phase, started + seconds) for _ in range(concurrency))
    )
    phase.seconds = time.perf_counter() - started
    phase.server_cpu = (cpu_seconds(node.process.pid) - server0) / phase.seconds
    phase.client_cpu = (cpu_seconds(os.getpid()) - client0) / phase.seconds


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) of sorted values, nearest rank."""
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


def table(phases: list[Phase], healthz_rate: float) -> str:
    """The results as a markdown table."""
    rows = [
        "| request | req/s | vs healthz | p50 ms | p99 ms | non-2xx | server CPU | client CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in phases:
        lat = sorted(p.latencies)
        rate = len(lat) / p.seconds
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(p.errors.items())) or "0"
        rows.append(
            f"| {p.name} | {rate:,.0f} | {rate / healthz_rate:.0%} | "
            f"{statistics.median(lat) * 1000:.1f} | {percentile(lat, 0.99) * 1000:.1f} | "
            f"{errors} | {p.server_cpu:.0%} | {p.client_cpu:.0%} |"
        )
    return "\n".join(rows)


def profile(node: Node, out: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy recording the server for a phase, if py-spy is installed."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy is not installed; no profile", file=sys.stderr)
        return None
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(node.process.pid),
            "--duration",
            str(int(seconds)),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
            "--gil",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def hot_spots(raw: Path, top: int = 12) -> str:
    """Top functions of a py-spy raw profile: own samples, and inclusive for OpenIVR code."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return "(no samples)"
    lines = [f"{total} samples holding the GIL; own time:"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    lines.append("inclusive time of openivr and library entry points:")
    wanted = ("openivr/", "h11_impl", "fastapi/routing", "sqlalchemy/orm/session", "jwt/", "json/")
    picked = [(f, n) for f, n in inclusive.most_common() if any(w in f for w in wanted)]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in picked[:top]]
    return "\n".join(lines)


def main() -> None:
    """Parse the flags, run the three phases, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp dir")
    parser.add_argument("--server-cpu", type=int, default=0, help="-1: do not pin")
    parser.add_argument("--client-cpu", type=int, default=1, help="-1: do not pin")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles into this dir")
    args = parser.parse_args()

    if args.client_cpu >= 0:
        os.sched_setaffinity(0, {args.client_cpu})
    with tempfile.TemporaryDirectory(prefix="openivr-bench-") as tmp:
        node = start_node(
            Path(tmp), args.database_url, None if args.server_cpu < 0 else args.server_cpu
        )
        try:
            app_path = f"/account/{node.account_id}/voiceapp/{node.app_id}"
            names = [json.dumps({"name": f"Main menu {i}"}).encode() for i in range(2)]
            phases = [
                Phase("GET /healthz", lambda n: raw_request("GET", "/healthz", "")),
                Phase("GET voiceapp", lambda n: raw_request("GET", app_path, node.token)),
                Phase(
                    "PUT voiceapp", lambda n: raw_request("PUT", app_path, node.token, names[n % 2])
                ),
                # The same PUT without contention: the cost of one change, without retries.
                Phase(
                    "PUT voiceapp, 1 client",
                    lambda n: raw_request("PUT", app_path, node.token, names[n % 2]),
                    concurrency=1,
                ),
            ]
            for phase in phases:
                spy = None
                if args.profile:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    slug = re.sub(r"[^a-z0-9]+", "-", phase.name.lower()).strip("-")
                    spy = profile(node, args.profile / f"{slug}.txt", args.seconds)
                asyncio.run(
                    run_phase(node, phase, phase.concurrency or args.concurrency, args.seconds)
                )
                if spy is not None:
                    spy.wait(timeout=60)
                    report = args.profile / f"{slug}-hot.txt"
                    report.write_text(hot_spots(args.profile / f"{slug}.txt"))
                    print(f"\n## {phase.name}\n{report.read_text()}")
        finally:
            node.process.send_signal(signal.SIGINT)
            try:
                node.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                node.process.kill()
    healthz = len(phases[0].latencies) / phases[0].seconds
    store = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"\n{args.concurrency} clients, {args.seconds:g} s per request kind, {store}, "
        f"server on CPU {args.server_cpu}, load generator on CPU {args.client_cpu}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n"
    )
    print(table(phases, healthz))


if __name__ == "__main__":
    main()
