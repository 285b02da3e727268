"""The call log as a user reads it: calls in progress are listed and completed when they end,
each call's start and end is one log line, every HTTP request one access line, and calls a
killed node left up are closed when it comes back."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.calls.conftest import ended, free_udp_port, rtp_range, run_sipp, wait_for
from tests.conftest import RunningServer, base_settings, run_server
from tests.node_process import serving_node


@pytest.fixture
def sip_node(tmp_path: Path, database_url: str) -> Iterator[RunningServer]:
    """A node answering SIP, on SQLite and (second run) PostgreSQL."""
    yield from run_server(
        base_settings(tmp_path, database_url, sip_port=free_udp_port(), rtp_ports=rtp_range())
    )


def test_a_call_in_progress_is_listed_and_then_completed(
    sip_node: RunningServer, tmp_path: Path
) -> None:
    node = sip_node
    acc = node.account()
    apps = node.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()
    menu = next(a["app_id"] for a in apps["response"] if a["app_type"] == "ivr")
    url = f"/account/{acc.account_id}/call"

    def listed(query: str = "") -> list[dict[str, Any]]:
        return list(node.client.get(url + query, headers=acc.headers).json()["response"])

    with ThreadPoolExecutor(1) as pool:
        talking = pool.submit(
            run_sipp, node, "caller_bye.xml", tmp_path, menu, values={"wait_ms": "4000"}
        )
        [live] = wait_for(lambda: listed("?outcome=in_progress"))
        assert live["end_time"] is None and live["duration"] is None
        assert (live["from"], live["to"], live["apps"]) == ("+46701234567", menu, [menu])
        talking.result(timeout=30)
    [done] = wait_for(lambda: ended(node.client.get(url, headers=acc.headers)))
    assert done["call_id"] == live["call_id"] and done["outcome"] == "caller_hangup"
    assert done["start_time"] <= done["end_time"] and done["duration"] >= 3.5
    assert len(listed()) == 1  # the same row, completed
    assert listed("?outcome=in_progress") == []
    assert [c["call_id"] for c in listed("?outcome=caller_hangup")] == [live["call_id"]]


def test_each_call_and_request_is_one_log_line(tmp_path: Path) -> None:
    sip_port = free_udp_port()
    with serving_node(tmp_path, "--sip-port", str(sip_port), "--rtp-ports", rtp_range()) as node:
        menu = node.app_of_type("ivr")["app_id"]
        run_sipp(
            None, "caller_bye.xml", tmp_path, menu, values={"wait_ms": "500"}, sip_port=sip_port
        )
        calls = f"/account/{node.account_id}/call"
        [call] = wait_for(
            lambda: [c for c in node.get(calls + "?from=%2B46701234567") if c["end_time"]]
        )
        asked = f'"GET /account/{node.account_id}/call" 200'
        # The access line is written once the answer has gone out: wait for it.
        log = wait_for(lambda: next((t for t in [node.log.read_text()] if asked in t), None))
    cid = re.escape(call["call_id"])
    started = re.findall(rf"INFO .*: call {cid} started: .*", log)
    over = re.findall(rf"INFO .*: call {cid} ended: .*", log)
    assert len(started) == 1
    assert started[0].endswith(f"started: from +46701234567 to {menu}, app {menu}")
    assert len(over) == 1
    assert (
        f"ended: caller_hangup, from +46701234567 to {menu}, app {menu}, ended by caller" in over[0]
    )
    # An access line per request, without the query string (signed links carry secrets there).
    access = [line for line in log.splitlines() if "openivr.access" in line]
    assert any(asked in line for line in access), access
    assert not any("?" in line for line in access)
    assert not any("/healthz" in line for line in access)  # probes that succeed stay quiet


def test_calls_a_killed_node_left_up_are_closed_when_it_comes_back(tmp_path: Path) -> None:
    sip_port = free_udp_port()
    flags = ("--sip-port", str(sip_port), "--rtp-ports", rtp_range(), "--node-name", "box-a")
    with serving_node(tmp_path, *flags) as node, ThreadPoolExecutor(1) as pool:
        menu = node.app_of_type("ivr")["app_id"]
        talking = pool.submit(
            run_sipp, None, "caller_bye.xml", tmp_path, menu,
            values={"wait_ms": "8000"}, sip_port=sip_port, timeout=15,
        )  # fmt: skip
        calls = f"/account/{node.account_id}/call"
        wait_for(lambda: [c for c in node.get(calls) if c["outcome"] == "in_progress"])
        node.signal_all(signal.SIGKILL)  # the API process and its media process
        node.proc.wait(timeout=10)
        time.sleep(0.5)
        with serving_node(tmp_path, *flags, name="again", account=False) as again:
            [call] = replace(again, token=node.token).get(calls)
        talking.exception(timeout=60)  # the caller's BYE got no answer: that call failed
    assert call["outcome"] == "interrupted" and call["end_time"] is not None
    assert call["node"] == "box-a"


def test_a_call_shorter_than_a_write_batch_is_one_complete_row(
    sip_node: RunningServer, tmp_path: Path
) -> None:
    node = sip_node
    acc = node.account()
    apps = node.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()
    menu = next(a["app_id"] for a in apps["response"] if a["app_type"] == "ivr")
    run_sipp(node, "caller_bye.xml", tmp_path, menu, values={"wait_ms": "0"})
    url = f"/account/{acc.account_id}/call"
    [done] = wait_for(lambda: ended(node.client.get(url, headers=acc.headers)))
    time.sleep(0.5)  # nothing else is written afterwards
    assert node.client.get(url, headers=acc.headers).json()["response"] == [done]
    assert done["outcome"] == "caller_hangup" and done["apps"] == [menu]
