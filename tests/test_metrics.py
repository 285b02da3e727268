"""What an operator watches: /metrics after real SIPp calls, its protection, /readyz, and
JSON log lines that carry the call's id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from openivr import logs
from tests.calls.conftest import free_udp_port, rtp_range, run_sipp, wait_for
from tests.conftest import RunningServer, base_settings, run_server
from tests.node_process import serving_node


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RunningServer]:
    settings = base_settings(
        tmp_path,
        sip_port=free_udp_port(),
        rtp_ports=rtp_range(),
        node_name="node-a",
    )
    yield from run_server(settings)


def test_metrics_reflect_a_real_call(node: RunningServer, tmp_path: Path) -> None:
    acc = node.account()
    apps = node.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
    assert apps.status_code == 200
    menu = next(a for a in apps.json()["response"] if a["name"] == "Main menu")
    before = _samples(node.client.get("/metrics").text)
    assert _value(before, "openivr_calls_total", outcome="hangup") == 0

    node.client.put(
        f"/account/{acc.account_id}/voiceapp/{menu['app_id']}",
        headers=acc.headers,
        json={"menu": {"digit_2": {"action": "hangup"}}},
    )
    run_sipp(
        node,
        "menu_key_info.xml",
        tmp_path,
        menu["app_id"],
        values={"key": "2", "wait_ms": "1000", "bye_timeout": "8000"},
    )
    run_sipp(node, "refused.xml", tmp_path, "4699999999", values={"status": "404"})

    def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples = _samples(node.client.get("/metrics").text)
        done = _value(samples, "openivr_calls_total", outcome="hangup") == 1
        return samples if done and _value(samples, "openivr_calls_up") == 0 else None

    samples = wait_for(scraped)
    assert _value(samples, "openivr_calls_rejected_total", reason="not_found") == 1
    assert _value(samples, "openivr_calls_total", outcome="rejected") == 1
    assert _value(samples, "openivr_node_info", node="node-a", version="0.1.0") == 1
    # The call's audio was paced by the media clock, whose lag is a histogram.
    assert _value(samples, "openivr_media_tick_lag_seconds_count") > 25
    assert _value(samples, "openivr_rtp_send_errors_total") == 0
    # API requests by route template, never by raw path.
    route = "/account/{account_id}/voiceapp/{app_id}"
    assert (
        _value(
            samples,
            "openivr_http_request_duration_seconds_count",
            route=route,
            method="PUT",
            status="200",
        )
        == 1
    )
    assert not any(acc.account_id in str(labels) for (_n, labels) in samples)
    assert _value(samples, "openivr_voicemail_deliveries", state="failed") == 0
    assert _value(samples, "openivr_database_up") == 1


def test_security_refusals_and_bans_are_counted(tmp_path: Path) -> None:
    settings = base_settings(tmp_path, auth_failures=2)
    for server in run_server(settings):
        acc = server.account()
        for _ in range(3):
            server.client.post(
                "/oauth/token",
                data={"grant_type": "password", "username": acc.email, "password": "x"},
                auth=("sonetel-api", "sonetel-api"),
            )
        samples = _samples(server.client.get("/metrics").text)
        key = "openivr_security_events_total"
        assert _value(samples, key, kind="failure", channel="api", reason="wrong_password") == 2
        assert _value(samples, key, kind="ban", channel="api", reason="user_locked") == 1
        assert _value(samples, key, kind="refusal", channel="api", reason="address_banned") == 1


def test_metrics_need_the_token_or_a_listed_network(tmp_path: Path) -> None:
    for server in run_server(base_settings(tmp_path, metrics_token="s3cret-scrape")):
        assert server.client.get("/metrics").status_code == 403
        wrong = server.client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        ok = server.client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert ok.status_code == 200 and "openivr_calls_up" in ok.text
        assert ok.headers["content-type"].startswith("text/plain")
    listed = base_settings(tmp_path / "b", metrics_networks=("10.0.0.0/8",))
    for server in run_server(listed):
        assert server.client.get("/metrics").status_code == 403  # loopback is not listed
    for server in run_server(base_settings(tmp_path / "c")):
        assert server.client.get("/metrics").status_code == 200  # neither set: this machine


def test_readyz_says_whether_to_send_traffic(node: RunningServer) -> None:
    r = node.client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert node.client.get("/healthz").status_code == 200


def test_json_log_lines_carry_the_call_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.CallContext())
    handler.setFormatter(logs.JsonFormatter("node-a"))
    logger = logging.getLogger("openivr.test_json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    async def call() -> None:
        logs.call_id.set("call-123@example")

        async def inner() -> None:
            logger.info("in the call's task %s", "x", extra={"source": "192.0.2.1"})

        await asyncio.get_running_loop().create_task(inner())

    try:
        asyncio.run(call())
        logger.warning("outside any call")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["call_id"] == "call-123@example" and first["source"] == "192.0.2.1"
    assert first["message"] == "in the call's task x" and first["node"] == "node-a"
    assert first["level"] == "INFO" and first["logger"] == "openivr.test_json"
    assert "call_id" not in second


def test_serve_with_json_logs_writes_one_object_per_line(tmp_path: Path) -> None:
    with serving_node(tmp_path, "--log-format", "json", "--node-name", "n1") as served:
        served.get(f"/account/{served.account_id}/voiceapp")
    lines = [line for line in served.log.read_text().splitlines() if line.strip()]
    assert len(lines) >= 3
    parsed = [json.loads(line) for line in lines]
    assert all(p["node"] == "n1" and p["level"] and "time" in p for p in parsed)
    assert any(p["logger"].startswith("uvicorn") for p in parsed)
