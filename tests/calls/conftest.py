"""Live-call fixtures: a node with SIP on free ports, an SMTP sink, and SIPp runs."""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import (
    RunningServer,
    base_settings,
    free_port,
    free_port_block,
    require_binary,
    run_server,
    wait_udp_bound,
    worker_ports,
)

SCENARIOS = Path(__file__).parent / "scenarios"
PCAPS = Path("/usr/share/sip-tester")


def free_udp_port() -> int:
    """A port free for UDP and TCP alike (a node listens on both), below the ephemeral range."""
    return free_port()


def rtp_range() -> str:
    """A random block of 200 RTP ports below the ephemeral range, in this test worker's own
    share of 20000-32599, so parallel tests and client sockets do not collide with it."""
    ports = worker_ports(20000, 32600)
    base = random.randrange(ports.start, ports.stop - 199, 2)
    return f"{base}-{base + 199}"


@dataclass
class SmtpSink:
    """Collects every mail delivered to it."""

    port: int
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on a free port."""
    port = free_port()
    sink = SmtpSink(port)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def phone_server(tmp_path: Path, smtp_sink: SmtpSink) -> Iterator[RunningServer]:
    """A node answering SIP on a free port, delivering voicemail to the SMTP sink."""
    settings = base_settings(
        tmp_path,
        sip_port=free_udp_port(),
        rtp_ports=rtp_range(),
        smtp_url=f"smtp://127.0.0.1:{smtp_sink.port}",
        smtp_from="voicemail@openivr.test",
    )
    yield from run_server(settings)


def run_sipp(
    server: RunningServer | None,
    scenario: str,
    tmp_path: Path,
    service: str,
    *,
    values: dict[str, str] | None = None,
    timeout: float = 60,
    sip_port: int | None = None,
    local_port: int | None = None,
    extra: tuple[str, ...] = (),
) -> str:
    """One SIPp call of a scenario (to the node, or to `sip_port`, e.g. a proxy in front of it);
    fails the test with SIPp's own errors when the call fails."""
    sipp = require_binary("sipp")
    port = sip_port or (server.settings.sip_port if server is not None else 0)
    assert port, "run_sipp needs a server or a sip_port"
    text = (SCENARIOS / scenario).read_text()
    values = {"audio_pcap": str(PCAPS / "g711a.pcap"), **(values or {})}
    for key, value in values.items():
        text = text.replace(f"[{key}]", value)
    path = tmp_path / Path(scenario).name
    path.write_text(text)
    errors = tmp_path / f"{path.name}.errors.log"
    cmd = [
        sipp,
        f"127.0.0.1:{port}",
        "-sf",
        str(path),
        "-s",
        service,
        "-m",
        "1",
        "-i",
        "127.0.0.1",
        "-p",
        str(local_port or free_udp_port()),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_port_block()),
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(errors),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=timeout + 30)
    if proc.returncode != 0:
        detail = errors.read_text()[-3000:] if errors.exists() else proc.stdout[-3000:]
        pytest.fail(f"sipp {scenario} exited {proc.returncode}:\n{detail}")
    return proc.stdout


def ended(response: Any) -> list[dict[str, Any]]:
    """The calls of a GET .../call answer that have ended (calls in progress are listed too)."""
    rows: list[dict[str, Any]] = response.json()["response"]
    return [row for row in rows if row["end_time"] is not None]


def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll until predicate() is truthy; return its value or fail."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail("timed out waiting for the server")


@dataclass
class Target:
    """A SIPp process waiting for our call (a transfer target)."""

    proc: subprocess.Popen[str]
    port: int
    errors: Path

    def finish(self, timeout: float = 30) -> None:
        """Wait for the scenario to end and fail with its errors unless it passed."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        if self.proc.returncode != 0:
            detail = self.errors.read_text()[-3000:] if self.errors.exists() else out[-3000:]
            pytest.fail(f"the SIPp target exited {self.proc.returncode}:\n{detail}")


def start_target(
    scenario: str,
    tmp_path: Path,
    values: dict[str, str],
    extra: tuple[str, ...] = (),
    port: int | None = None,
) -> Target:
    """Start a SIPp target from tests/sip/scenarios on `port` (default: a free one)."""
    sipp = require_binary("sipp")
    text = (Path(__file__).parent.parent / "sip" / "scenarios" / scenario).read_text()
    for key, value in values.items():
        text = text.replace(f"[{key}]", value)
    path = tmp_path / f"target-{scenario}"
    path.write_text(text)
    port = port or free_udp_port()
    errors = tmp_path / f"target-{scenario}.errors.log"
    cmd = [
        sipp,
        "-sf",
        str(path),
        "-m",
        "1",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_port_block()),
        "-timeout",
        "40s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(errors),
        *extra,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path
    )
    wait_udp_bound(port, proc)
    return Target(proc, port, errors)
