"""Bench: `openivr serve --workers N` as a user runs it, talking callers spread over its workers.

    flock -x /tmp/openivr-cpu.lock .venv/bin/python bench/sip/workers.py --workers 1 2 \\
        --calls 1000 --hold 20 --rate 100

A real `openivr serve --workers N` (API process + N media processes, SQLite) with the IVR
bench's menu (a 60 s welcome; key 1 hangs up). One SIPp per worker calls that worker's SIP port
directly (what the Kamailio balancer in front would do: `tests/calls/test_cluster.py` runs a
two-worker node behind it), `--calls` in all, talking (speech the whole call, key 1 as RFC 4733
after `--hold` s). Nothing is pinned: with two workers on a two-core machine the callers share
the cores with them, which the report shows (`others_pct`).

Reported per run: calls with the key acted on (call records), answers per second over the ramp
(from the records, 1 s resolution), our RTP's intervals as the callers see them (tcpdump),
each media process's CPU while all calls were up and the callers' (every SIPp's) CPU then.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from ivr_calls import RTP_PORTS, core_busy, free_port, long_prompt, scenario  # noqa: E402
from talking import Capture, process_cpu, sipp_command  # noqa: E402


def free_ports(count: int) -> int:
    """A port p with p .. p + count - 1 free for UDP and TCP."""
    for _ in range(200):
        base = free_port()
        if base + count > 65000:
            continue
        try:
            for port in range(base, base + count):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, kind) as sock:
                        sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free consecutive ports")


def run(workers: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """One node with `workers` media processes, one level of talking callers."""
    data = tmp / f"data-{workers}"
    http, sip_port = free_port(socket.SOCK_STREAM), free_ports(workers)
    openivr = str(Path(sys.executable).with_name("openivr"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIVR_")}
    serve = subprocess.Popen(
        [
            openivr,
            "serve",
            "--data-dir",
            str(data),
            "--http-port",
            str(http),
            "--sip-port",
            str(sip_port),
            "--workers",
            str(workers),
            "--rtp-ports",
            f"{RTP_PORTS[0]}-{RTP_PORTS[1]}",
            "--max-calls",
            "5000",
            "--node-name",
            "bench",
            # SIPp places every call from one address, like a trunk or the balancer: trusted,
            # or the flood limit refuses most of 100 INVITEs a second from it.
            "--trusted-networks",
            "127.0.0.1",
        ],  # fmt: skip
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / f"serve-{workers}.log", "wb"),  # noqa: SIM115
    )
    url = f"http://127.0.0.1:{http}"
    try:
        for _ in range(1200):
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        email, password = f"bench-{secrets.token_hex(3)}@example.com", "bench-pass"
        created = subprocess.run(
            [openivr, "account", "create", "--email", email, "--password", password,
             "--data-dir", str(data)],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        account_id = json.loads(created.stdout)["account_id"]
        with httpx.Client(base_url=url, timeout=120) as c:
            token = c.post(
                "/oauth/token",
                data={"grant_type": "password", "username": email, "password": password},
                auth=("sonetel-api", "sonetel-api"),
            ).json()["access_token"]
            h = {"Authorization": f"Bearer {token}"}
            base = f"/account/{account_id}"
            apps = c.get(f"{base}/voiceapp", headers=h).json()["response"]
            menu = next(a for a in apps if a["app_type"] == "ivr")
            c.put(f"{base}/voiceapp/{menu['app_id']}", headers=h,
                  json={"menu": {"digit_1": {"action": "hangup"}}})  # fmt: skip
            prompts = c.get(f"{base}/voiceapp/{menu['app_id']}/prompt", headers=h).json()
            welcome = next(p for p in prompts["response"] if p["key"] == "welcome")
            r = c.post(f"/prompt/{welcome['prompt_id']}/message", headers=h,
                       files={"file": ("long.wav", long_prompt(60), "audio/wav")})  # fmt: skip
            assert r.status_code == 200, r.text
        media = [
            int(p)
            for p in subprocess.run(
                ["pgrep", "-P", str(serve.pid), "-f", "openivr.media_main"],
                capture_output=True, text=True, check=False,
            ).stdout.split()
        ]  # fmt: skip
        xml = scenario(tmp, args)
        media_ports = [free_port() for _ in range(workers)]
        capture = Capture(tmp / "callers.pcap", media_ports, RTP_PORTS)
        time.sleep(0.5)
        started = time.time()
        per = args.calls // workers
        callers = [
            subprocess.Popen(
                sipp_command(
                    f"127.0.0.1:{sip_port + i}",
                    xml,
                    menu["app_id"],
                    calls=per,
                    limit=per,
                    rate=max(1, args.rate // workers),
                    ports=(free_port(), media_ports[i]),
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=tmp,
            )
            for i in range(workers)
        ]
        ramp = args.calls / args.rate
        time.sleep(ramp + 1.0)
        window = max(1.0, args.hold - ramp - 2.0)
        cpu0 = [process_cpu(p) for p in media]
        sipp0 = sum(process_cpu(caller.pid) for caller in callers)
        busy0 = [core_busy(core) for core in range(os.cpu_count() or 1)]
        wall0 = time.monotonic()
        time.sleep(window)
        wall = time.monotonic() - wall0
        cpu = [(process_cpu(p) - c) / wall for p, c in zip(media, cpu0, strict=True)]
        busy = [(core_busy(core) - b) / wall for core, b in enumerate(busy0)]
        sipp = (sum(process_cpu(caller.pid) for caller in callers) - sipp0) / wall
        for caller in callers:
            caller.wait()
        heard = capture.stop()
        time.sleep(1.0)
        with httpx.Client(base_url=url, timeout=120) as c:
            records = c.get(f"{base}/call?limit=1000", headers=h).json()["response"]
        mine = [r for r in records if r["start_time"] >= time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime(started - 1))]  # fmt: skip
        acted = sum(1 for r in mine if r["keys"] == "1" and r["outcome"] == "hangup")
        answers = Counter(r["answer_time"] for r in mine if r["answer_time"])
        ramp_seconds = sorted(answers)[: max(1, int(ramp) + 1)]
        return {
            "workers": workers,
            "calls": args.calls,
            "key_acted_on": acted,
            "by_worker": dict(Counter(r["node"] for r in mine)),
            "setup_per_s": round(
                sum(answers[s] for s in ramp_seconds) / max(1, len(ramp_seconds)), 1
            ),  # fmt: skip
            **{k: round(v, 2) for k, v in heard.items()},
            "media_cpu_pct": [round(100 * c, 1) for c in cpu],
            "cores_busy_pct": [round(100 * b, 1) for b in busy],
            "others_pct": round(100 * (sum(busy) - sum(cpu)), 1),
            "sipp_cpu_pct": round(100 * sipp, 1),  # the callers' share of others
        }
    finally:
        serve.terminate()
        serve.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--keys", choices=("rfc4733", "info", "inband"), default="rfc4733")
    args = parser.parse_args()
    args.silent = False
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run(workers, args, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
