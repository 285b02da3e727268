"""Stopping a node: calls in progress go on to their end, new calls are refused with 503."""

from __future__ import annotations

import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.calls.conftest import free_udp_port, rtp_range, run_sipp
from tests.node_process import serving_node


def test_a_stopping_node_lets_calls_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    sip_port = free_udp_port()
    flags = ("--sip-port", str(sip_port), "--rtp-ports", rtp_range(), "--drain-seconds", "20")
    with serving_node(tmp_path, *flags) as node, ThreadPoolExecutor(1) as pool:
        menu = node.app_of_type("ivr")["app_id"]
        # A caller who stays 4 s in the menu and then hangs up.
        talking = pool.submit(
            run_sipp, None, "caller_bye.xml", tmp_path, menu,
            values={"wait_ms": "4000"}, sip_port=sip_port,
        )  # fmt: skip
        time.sleep(1.5)
        node.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        # A new caller is turned away at once, so a balancer can try another node.
        run_sipp(None, "refused.xml", tmp_path, menu, values={"status": "503"}, sip_port=sip_port)
        assert node.proc.poll() is None, "the node stopped before its call ended"
        talking.result(timeout=30)  # the first call went on to its own BYE, answered 200
        try:
            code = node.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise AssertionError("the node did not stop after its last call ended") from None
        # uvicorn re-raises the signal once it has shut down cleanly (systemd counts that as a
        # clean stop); anything else is a crash.
        assert code in (0, -signal.SIGTERM), node.log.read_text()
    log = node.log.read_text()
    assert "calls in progress may finish" in log
    assert "drain time is up" not in log
