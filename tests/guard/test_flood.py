"""Floods: a source over its rate is dropped unanswered, others are served, trusted
networks are never limited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openivr.guard.addresses import Networks
from openivr.guard.flood import FloodGate
from tests.calls.conftest import free_udp_port, rtp_range
from tests.conftest import RunningServer, base_settings, run_server
from tests.sip.conftest import Dialogue, RawPeer


def test_a_bucket_lets_a_burst_through_then_the_rate() -> None:
    gate = FloodGate(rate=50, burst=10, trusted=Networks.parse(["10.0.0.0/8"]))
    assert [gate.allow("192.0.2.1") for _ in range(12)] == [True] * 10 + [False] * 2
    assert gate.allow("192.0.2.2")  # every source has its own bucket
    time.sleep(0.1)  # 50/s refills five (more on a busy machine, never past the burst)
    assert 5 <= sum(gate.allow("192.0.2.1") for _ in range(12)) <= 10
    assert all(gate.allow("10.1.2.3") for _ in range(1000))  # a trusted balancer
    # One IPv6 host holds a /64: all its addresses share one bucket.
    assert sum(gate.allow(f"2001:db8:1:2::{n:x}") for n in range(1, 30)) == 10
    assert gate.dropped > 0


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="sip_rate_limit"):
        FloodGate(rate=0, burst=10)


@pytest.fixture
def limited_node(tmp_path: Path) -> Iterator[RunningServer]:
    settings = base_settings(
        tmp_path,
        sip_port=free_udp_port(),
        rtp_ports=rtp_range(),
        sip_rate_limit=5.0,
        sip_rate_burst=10,
        trusted_networks=("127.0.0.3",),
    )
    yield from run_server(settings)


async def _answers(peer: RawPeer, port: int, count: int, pace: int = 0) -> int:
    """Send `count` OPTIONS as fast as a scanner does (or in groups of `pace`, so no socket
    buffer overflows); how many were answered."""
    for n in range(count):
        peer.send(port, Dialogue(peer.port).request("OPTIONS"))
        if pace and n % pace == pace - 1:
            await asyncio.sleep(0.02)
    answered = 0
    try:
        while True:
            await peer.response(timeout=1.0)
            answered += 1
    except TimeoutError:
        return answered


def test_a_scanner_is_dropped_while_others_are_served(limited_node: RunningServer) -> None:
    port = limited_node.settings.sip_port

    async def scenario() -> tuple[int, int, int]:
        scanner = await RawPeer.open("127.0.0.2")
        phone = await RawPeer.open("127.0.0.1")
        balancer = await RawPeer.open("127.0.0.3")
        try:
            flooded = await _answers(scanner, port, 300)
            served = await _answers(phone, port, 5)
            trusted = await _answers(balancer, port, 200, pace=20)
        finally:
            for peer in (scanner, phone, balancer):
                peer.close()
        return flooded, served, trusted

    flooded, served, trusted = asyncio.run(scenario())
    assert 10 <= flooded <= 30  # the burst, and what the rate refilled meanwhile
    assert served == 5
    assert trusted == 200
