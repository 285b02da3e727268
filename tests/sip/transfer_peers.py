"""Shared pieces for the transfer tests: a SIPp process runner and a handler that transfers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from openivr.audio import tones
from openivr.sip.call import MediaCall
from openivr.sip.connect import Connector
from openivr.sip.server import Accept, Invite, Reject, SipServer, SipServerConfig
from openivr.sip.transfer import TransferLeg, TransferTarget
from tests.conftest import free_port, free_port_block

from .conftest import need_binary

SCENARIOS = Path(__file__).parent / "scenarios"
PCAPS = Path("/usr/share/sip-tester")
CALLER_ID = "+46700000001"


def pcap(name: str) -> str:
    path = PCAPS / name
    if not path.exists():
        need_binary("a SIPp with its pcaps in /usr/share/sip-tester (package sip-tester)-missing")
    return str(path)


@dataclass
class Sipp:
    """One running SIPp process playing a scenario."""

    name: str
    proc: asyncio.subprocess.Process
    errors: Path
    port: int

    async def finish(self, timeout: float = 40.0) -> None:
        """Wait for SIPp to end; fail the test with its error log unless it passed."""
        try:
            out, _ = await asyncio.wait_for(self.proc.communicate(), timeout)
        except TimeoutError:
            self.proc.kill()
            out, _ = await self.proc.communicate()
        if self.proc.returncode != 0:
            detail = self.errors.read_text()[-3000:] if self.errors.exists() else ""
            pytest.fail(f"sipp {self.name} exited {self.proc.returncode}:\n{detail}\n{out!r}")

    def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


async def start_sipp(
    scenario: str,
    tmp_path: Path,
    *,
    remote: str | None = None,
    service: str = "100",
    values: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
    port: int | None = None,
) -> Sipp:
    """Start SIPp on a free port: a caller when `remote` is given, else a target that waits."""
    sipp = need_binary("sipp")
    text = (SCENARIOS / scenario).read_text()
    for key, value in (values or {}).items():
        text = text.replace(f"[{key}]", value)
    workdir = tmp_path / scenario.removesuffix(".xml")
    while workdir.exists():
        workdir = workdir.with_name(workdir.name + "_")
    workdir.mkdir()
    path = workdir / scenario
    path.write_text(text)
    port = port or free_port()
    errors = workdir / "errors.log"
    args = [
        "-sf",
        str(path),
        "-s",
        service,
        "-m",
        "1",
        "-t",
        "u1",
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
    if remote is not None:
        args.insert(0, remote)
    proc = await asyncio.create_subprocess_exec(
        sipp,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=workdir,
    )
    await asyncio.sleep(0.2)  # let a target bind its port before anyone calls it
    return Sipp(scenario, proc, errors, port)


@dataclass
class TransferDesk:
    """A handler that answers, transfers, and — if the caller is still there — hangs up."""

    target: TransferTarget | None = None
    connector: Connector | None = None
    legs: list[TransferLeg] = field(default_factory=list)
    answered: int = 0
    still_up: list[bool] = field(default_factory=list)
    calls: list[MediaCall] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def route(self, invite: Invite) -> Accept | Reject:
        return Accept(self.handle)

    def on_answer(self) -> None:
        self.answered += 1

    async def handle(self, call: MediaCall) -> None:
        self.calls.append(call)
        try:
            await call.answer()
            assert self.connector is not None and self.target is not None
            leg = await self.connector.connect(call, self.target, CALLER_ID, self.on_answer)
            self.legs.append(leg)
            self.still_up.append(call.state == "answered")
            if not call.ended:
                # Back in the menu: the caller hears a tone, then we say goodbye.
                call.play_pcm(tones.beep(440.0, 300.0))
                await asyncio.sleep(0.4)
                await call.hangup()
        finally:
            self.done.set()


@pytest.fixture
async def desk() -> AsyncIterator[tuple[SipServer, TransferDesk]]:
    handler = TransferDesk()
    server = SipServer(handler.route, SipServerConfig(host="127.0.0.1", port=0, max_calls=50))
    await server.start()
    try:
        yield server, handler
    finally:
        await server.stop()
