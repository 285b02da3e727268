"""Stopping a node: calls in progress go on to their end, new calls are refused with 503, and
what a caller said into a mailbox is kept however the node stops."""

from __future__ import annotations

import io
import signal
import subprocess
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.calls.conftest import SmtpSink, free_udp_port, rtp_range, run_sipp
from tests.conftest import drop_postgres_database, postgres_database
from tests.node_process import Node, serving_node


def test_a_stopping_node_lets_calls_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    sip_port = free_udp_port()
    flags = ("--sip-port", str(sip_port), "--rtp-ports", rtp_range(), "--drain-seconds", "20")
    with serving_node(tmp_path, *flags) as node, ThreadPoolExecutor(1) as pool:
        assert len(node.media_pids()) == 1  # by default the calls run beside the API process
        menu = node.app_of_type("ivr")["app_id"]
        # A caller who stays 4 s in the menu and then hangs up.
        talking = pool.submit(
            run_sipp, None, "caller_bye.xml", tmp_path, menu,
            values={"wait_ms": "4000"}, sip_port=sip_port,
        )  # fmt: skip
        node.wait_for_calls_in_progress()
        # As systemd stops a service: SIGTERM to every process of the node at once (the API
        # process and its media process), which must count as one stop.
        node.signal_all(signal.SIGTERM)
        node.wait_until_draining()
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


@pytest.fixture(params=["sqlite", "postgres"])
def store_flags(request: pytest.FixtureRequest) -> Iterator[tuple[str, ...]]:
    """No flag (SQLite in the data dir), then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield ()
        return
    url = postgres_database()
    try:
        yield ("--database-url", url)
    finally:
        drop_postgres_database(url)


def _node_with_mailbox(
    tmp_path: Path, smtp: SmtpSink, drain: str, store: tuple[str, ...]
) -> tuple[tuple[str, ...], int]:
    sip_port = free_udp_port()
    flags = (
        *("--sip-port", str(sip_port), "--rtp-ports", rtp_range(), "--drain-seconds", drain),
        *("--smtp-url", f"smtp://127.0.0.1:{smtp.port}", "--smtp-from", "vm@openivr.test"),
        *store,
    )
    return flags, sip_port


def _mailbox_for_mail(node: Node) -> str:
    box = node.app_of_type("mailbox")["app_id"]
    r = httpx.put(
        f"{node.base_url}/account/{node.account_id}/voiceapp/{box}",
        headers={"Authorization": f"Bearer {node.token}"},
        json={
            "greeting_prompt": "no",
            "goodbye_prompt": "yes",
            "deliver_to": "email",
            "deliver_to_details": "owner@example.com",
        },
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return str(box)


def _after_restart(
    tmp_path: Path, first: Node, flags: tuple[str, ...], box: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The first node's messages and call records, read from a node started afterwards on the
    same data dir and database (what a user finds once the node is back)."""
    store = flags[flags.index("--database-url") :][:2] if "--database-url" in flags else ()
    with serving_node(tmp_path, *store, name="after", account=False) as again:
        mine = replace(again, token=first.token, account_id=first.account_id)
        messages = mine.get(f"/account/{first.account_id}/voiceapp/{box}/voicemail")
        calls = mine.get(f"/account/{first.account_id}/call")
    return list(messages), list(calls)


def test_a_message_being_recorded_when_the_node_stops_is_kept_and_mailed(
    tmp_path: Path, smtp_sink: SmtpSink, store_flags: tuple[str, ...]
) -> None:
    flags, sip_port = _node_with_mailbox(tmp_path, smtp_sink, "8", store_flags)
    with serving_node(tmp_path, *flags) as node, ThreadPoolExecutor(1) as pool:
        box = _mailbox_for_mail(node)
        # The caller talks into the mailbox (7 s of speech) until the node hangs up.
        talking = pool.submit(
            run_sipp, None, "mailbox_talk_until_bye.xml", tmp_path, box,
            values={"bye_timeout": "20000"}, sip_port=sip_port,
        )  # fmt: skip
        node.wait_for_calls_in_progress()
        time.sleep(1.0)  # the caller talks a while
        stopped_at = time.monotonic()
        node.proc.send_signal(signal.SIGTERM)
        # The drain keeps the API up and says so.
        health = httpx.get(node.base_url + "/healthz", timeout=5)
        assert (health.status_code, health.json()["status"]) == (503, "draining")
        ready = httpx.get(node.base_url + "/readyz", timeout=5)
        assert ready.status_code == 503 and "draining" in ready.json()["problems"]
        talking.result(timeout=30)  # our BYE came, and was answered
        hung_up_after = time.monotonic() - stopped_at
        assert node.proc.wait(timeout=20) in (0, -signal.SIGTERM), node.log.read_text()
        # The message went out before the node was gone.
        assert len(smtp_sink.messages) == 1, node.log.read_text()
        [mail] = smtp_sink.messages
    # With 8 s of drain the message is closed 4 s before the end and the goodbye (3.5 s) plays;
    # the BYE comes after it. (On a machine so loaded that the audio runs late, the drain's end
    # may cut the goodbye's last words: the message is kept either way.)
    log = node.log.read_text()
    assert hung_up_after >= 5.0, log
    assert "saying goodbye to 1 calls" in log, log
    messages, calls = _after_restart(tmp_path, node, flags, box)
    [msg] = messages
    # Recorded from ~0.5 s after the answer until 4 s before the drain's end (~4.5 s).
    assert 3.0 <= msg["duration"] <= 6.0, msg
    attachments = [p for p in mail.walk() if p.get_content_type() == "audio/wav"]
    with wave.open(io.BytesIO(attachments[0].get_payload(decode=True))) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
        assert abs(w.getnframes() / 8000 - msg["duration"]) < 0.05
    assert np.sqrt(np.mean(samples**2)) > 100  # the caller's speech, not silence
    [call] = calls
    assert call["outcome"] == "voicemail" and call["ended_by"] == "us"
    assert call["detail"]["voicemail_id"] == msg["message_id"]
    assert abs(call["detail"]["voicemail_seconds"] - msg["duration"]) < 0.05
    assert call["detail"]["hangup_reason"] == "node stopping"


def test_a_second_ctrl_c_ends_the_calls_at_once_and_keeps_the_message(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    flags, sip_port = _node_with_mailbox(tmp_path, smtp_sink, "60", ())
    with serving_node(tmp_path, *flags) as node, ThreadPoolExecutor(1) as pool:
        box = _mailbox_for_mail(node)
        talking = pool.submit(
            run_sipp, None, "mailbox_talk_until_bye.xml", tmp_path, box,
            values={"bye_timeout": "20000"}, sip_port=sip_port,
        )  # fmt: skip
        node.wait_for_calls_in_progress()
        time.sleep(1.0)  # the caller talks a while
        node.signal_all(signal.SIGINT)  # Ctrl-C in a terminal reaches every process of the node
        node.wait_until_draining()
        time.sleep(1.0)
        assert node.proc.poll() is None, node.log.read_text()  # draining: the caller talks on
        if talking.done():
            talking.result()  # SIPp's own account of what went wrong
            pytest.fail(f"the call ended before the second Ctrl-C:\n{node.log.read_text()}")
        node.signal_all(signal.SIGINT)
        # The BYE comes at once: SIPp waits for it 20 s (bye_timeout) and fails after that,
        # while the 60 s drain would say goodbye only after 56 s.
        talking.result(timeout=30)
        assert node.proc.wait(timeout=20) in (0, -signal.SIGINT), node.log.read_text()
        [mail] = smtp_sink.messages
    log = node.log.read_text()
    assert "stop again (Ctrl-C) to end them now" in log and "stopping now: ending 1 calls" in log
    assert "saying goodbye" not in log, log  # ended at once, without the goodbye
    messages, calls = _after_restart(tmp_path, node, flags, box)
    [msg] = messages
    # Recorded from ~0.5 s after the answer (~2.5 s at an unhurried pace) until the second
    # Ctrl-C: kept, and cut there rather than running on through the caller's 7 s of speech.
    assert 0.5 <= msg["duration"] <= 5.0, msg
    assert mail["X-OpenIVR-Message"] == msg["message_id"]
    [call] = calls
    assert (call["outcome"], call["ended_by"]) == ("voicemail", "us")
    assert call["detail"]["voicemail_id"] == msg["message_id"]
