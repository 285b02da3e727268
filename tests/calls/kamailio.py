"""Kamailio (Debian's package) as the SIP load balancer in front of several nodes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.calls.conftest import free_udp_port
from tests.conftest import require_binary

# The sample balancer configuration operators start from; the suite runs it as it is.
CONFIG = Path(__file__).resolve().parents[2] / "contrib" / "kamailio" / "openivr.cfg"


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def kamailio(workdir: Path, node_ports: list[int]) -> Iterator[int]:
    """Run Kamailio balancing over the nodes' SIP ports; yields the port callers dial."""
    # Debian installs it in /usr/sbin, which a non-root PATH may lack.
    binary = shutil.which("kamailio", path="/usr/sbin:/usr/local/sbin") or require_binary(
        "kamailio"
    )
    port = free_udp_port()
    workdir.mkdir(parents=True, exist_ok=True)
    dispatcher_list = workdir / "dispatcher.list"
    dispatcher_list.write_text("".join(f"1 sip:127.0.0.1:{p}\n" for p in node_ports))
    log = (workdir / "kamailio.log").open("w")
    proc = subprocess.Popen(
        [binary, "-f", str(CONFIG), "-DD", "-E", "-Y", str(workdir), "-w", str(workdir)]
        + ["-A", f"LISTEN=udp:127.0.0.1:{port}", "-A", f'DISPATCHER_LIST="{dispatcher_list}"']
        # One worker: round-robin order is then exact, which the tests rely on.
        + ["-A", "CHILDREN=1", "-P", str(workdir / "kamailio.pid"), "-m", "32", "-M", "4"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 15
        while not _udp_port_taken(port):
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"kamailio did not start:\n{(workdir / 'kamailio.log').read_text()}")
            time.sleep(0.05)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
