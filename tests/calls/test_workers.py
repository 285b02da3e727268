"""`openivr serve` runs the API apart from calls' media (one media process by default on Linux,
`--workers N` for N): one node to an operator. `/metrics` and `/readyz` answer for every media
process, a stop drains all of them while the API still answers, and a media process that dies
is started again."""

from __future__ import annotations

import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.calls.conftest import free_udp_port, rtp_range, run_sipp, wait_for
from tests.calls.test_cluster import _two_free_ports
from tests.node_process import serving_node


def _metrics(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(base_url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def _policies(pid: int, but: str = "") -> list[int]:
    """The CPU scheduling policy of each thread of a process but those named `but` (threads
    that ended are left out)."""
    policies = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if but and (task / "comm").read_text().strip() == but:
                continue
            policies.append(os.sched_getscheduler(int(task.name)))
        except (ProcessLookupError, FileNotFoundError):
            pass
    return policies


def test_metrics_readyz_and_stop_span_every_media_process(tmp_path: Path) -> None:
    port = _two_free_ports()
    flags = ("--sip-port", str(port), "--rtp-ports", rtp_range(), "--drain-seconds", "20")
    with serving_node(tmp_path, *flags, "--workers", "2") as node, ThreadPoolExecutor(1) as pool:
        ready = httpx.get(node.base_url + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        # The API process yields the CPU to calls: every thread of it at SCHED_IDLE (the
        # kernel runs a media process the instant it wakes) but the one that starts media
        # processes; they are not.
        api = _policies(node.proc.pid, but="openivr-spawner")
        assert api and set(api) == {os.SCHED_IDLE}, api
        assert len(_policies(node.proc.pid)) == len(api) + 1
        media = node.media_pids()
        assert len(media) == 2
        assert all(set(_policies(pid)) == {os.SCHED_OTHER} for pid in media)
        menu = node.app_of_type("ivr")["app_id"]
        # One call on each media process; the API process counts both.
        for sip_port in (port, port + 1):
            run_sipp(
                None, "caller_bye.xml", tmp_path, menu,
                values={"wait_ms": "300"}, sip_port=sip_port,
            )  # fmt: skip

        def counted() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
            samples = _metrics(node.base_url)
            done = samples.get(("openivr_calls_total", (("outcome", "caller_hangup"),)))
            return samples if done == 2 else None

        samples = wait_for(counted)
        assert samples[("openivr_media_processes_answering", ())] == 2
        assert samples[("openivr_calls_up", ())] == 0
        # Both media clocks ran while the calls were up (ticks measured in either process).
        assert samples[("openivr_media_tick_lag_seconds_count", ())] > 0

        # A caller talks for 5 s on the second process when the node is told to stop.
        talking = pool.submit(
            run_sipp, None, "caller_bye.xml", tmp_path, menu,
            values={"wait_ms": "5000"}, sip_port=port + 1,
        )  # fmt: skip
        wait_for(lambda: _metrics(node.base_url)[("openivr_calls_up", ())] == 1)
        node.proc.send_signal(signal.SIGTERM)
        # The API still answers and says the node is draining; new calls go elsewhere (503).
        node.wait_until_draining()
        run_sipp(None, "refused.xml", tmp_path, menu, values={"status": "503"}, sip_port=port)
        assert node.proc.poll() is None, "the node stopped before its call ended"
        talking.result(timeout=30)  # the call went on to its own BYE
        try:
            code = node.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError("the node did not stop after its last call ended") from None
        assert code in (0, -signal.SIGTERM), node.log.read_text()
    assert "drain time is up" not in node.log.read_text()


def _ready(base_url: str) -> bool:
    return httpx.get(base_url + "/readyz", timeout=10).status_code == 200


def test_a_media_process_that_dies_is_started_again(tmp_path: Path) -> None:
    sip_port = free_udp_port()
    flags = ("--sip-port", str(sip_port), "--rtp-ports", rtp_range())
    with serving_node(tmp_path, *flags) as node:  # the default layout: one media process
        [media] = node.media_pids()
        menu = node.app_of_type("ivr")["app_id"]
        os.kill(media, signal.SIGKILL)  # a crash (or the kernel's OOM killer)
        # The API process notices, says so, and starts another that takes calls again, at the
        # calls' own CPU priority (not the API's).
        wait_for(lambda: node.media_pids() not in ([], [media]) and _ready(node.base_url), 60)
        [again] = node.media_pids()
        assert set(_policies(again)) == {os.SCHED_OTHER}
        run_sipp(
            None, "caller_bye.xml", tmp_path, menu, values={"wait_ms": "300"}, sip_port=sip_port
        )
        calls = f"/account/{node.account_id}/call"
        [call] = wait_for(lambda: [c for c in node.get(calls) if c["end_time"]])
        assert call["ended_by"] == "caller"
    assert f"media process 1 (SIP port {sip_port}) exited with -9; starting it again" in (
        node.log.read_text()
    )
