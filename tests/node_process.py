"""A real `openivr serve` process, as a user runs it, with one account logged in."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port


def openivr_command() -> list[str]:
    """The `openivr` command of the interpreter running the tests."""
    sibling = Path(sys.executable).with_name("openivr")
    if sibling.exists():
        return [str(sibling)]
    return [sys.executable, "-m", "openivr.cli"]


def clean_env() -> dict[str, str]:
    # The developer's own OPENIVR_* settings must not leak into the node under test.
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENIVR_")}


@dataclass
class Node:
    """A real `openivr serve` process with one account logged in. It leads a process group of
    its own, with the media process it starts (`--workers`, 1 by default on Linux)."""

    base_url: str
    account_id: str
    user_id: str
    token: str
    log: Path
    proc: subprocess.Popen[bytes]

    def get(self, path: str) -> Any:
        """The payload of an authenticated GET, asserting success."""
        r = httpx.get(
            self.base_url + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "success", body
        return body["response"]

    def apps(self) -> list[dict[str, Any]]:
        """Every voice app of the account."""
        return list(self.get(f"/account/{self.account_id}/voiceapp"))

    def app_of_type(self, app_type: str) -> dict[str, Any]:
        """The (first) app of a type, e.g. the default mailbox."""
        return next(a for a in self.apps() if a["app_type"] == app_type)

    def signal_all(self, sig: int) -> None:
        """Send a signal to every process of the node at once, as Ctrl-C in its terminal
        (SIGINT) or systemd stopping its service (SIGTERM) or killing it (SIGKILL) does."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:  # every process of it has gone already
            pass

    def media_pids(self) -> list[int]:
        """The node's media processes (none with `--workers 0` or SIP off)."""
        found = []
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*"):
            try:  # each thread's own children (the thread that starts them is not the main one)
                found += [int(child) for child in (task / "children").read_text().split()]
            except OSError:  # the thread (or the process) ended meanwhile
                pass
        return sorted(found)

    def wait_for_calls_in_progress(self, count: int = 1, timeout: float = 60.0) -> None:
        """Wait until the call log lists `count` calls in progress (a caller got through)."""
        query = f"/account/{self.account_id}/call?outcome=in_progress"
        _wait(lambda: len(self.get(query)) >= count, timeout, f"{count} calls in progress")

    def wait_until_draining(self, timeout: float = 60.0) -> None:
        """Wait until a stopped node says it is draining (new calls get 503 from then on)."""

        def draining() -> bool:
            r = httpx.get(self.base_url + "/readyz", timeout=10)
            return r.status_code == 503 and "draining" in r.json().get("problems", [])

        _wait(draining, timeout, "the node to say it is draining")


def _wait(done: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# Generous: a node starts in a few seconds on a quiet machine, many times that on one loaded by
# benchmarks beside the suite; this only bounds how long a start that never ends hangs a test.
START_SECONDS = 150


def _wait_until_serving(proc: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"openivr serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(base_url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(
        f"openivr serve did not answer /healthz within {START_SECONDS} s:\n{log.read_text()}"
    )


def _create_account(
    data_dir: Path, store_flags: list[str], email: str, password: str
) -> tuple[str, str]:
    """Create an account in a node's store from this process: (account id, user id). A second
    process (the CLI) would cost its start-up, a second or two, for each node a test starts."""
    from openivr.settings import Settings
    from openivr.store.accounts import create_account
    from openivr.store.db import open_database

    url = store_flags[1] if store_flags else ""
    settings = replace(Settings(), data_dir=data_dir, database_url=url)

    async def create() -> tuple[str, str]:
        async with open_database(settings.effective_database_url) as (_engine, sessions):
            made = await create_account(sessions, email, password, "Seed Scripts Ltd")
            return made.account_id, made.user_id

    return asyncio.run(create())


@contextmanager
def serving_node(
    tmp: Path, *flags: str, name: str = "server", account: bool = True
) -> Iterator[Node]:
    """Start `openivr serve` (SIP off unless `flags` say otherwise), create an account in its
    database while it runs (as `openivr account create` does; tests/api/test_flows.py runs that
    command itself), and log in. Nodes of one cluster share `tmp` (the data dir), each with
    its own `name`. Without `account` (a node restarted on data that has one already) the Node
    has no ids or token of its own: `dataclasses.replace` in those of the first node."""
    data_dir = tmp / "data"
    port = free_port()
    log = tmp / f"{name}.log"
    env = clean_env()
    # The account is written into the node's database.
    store_flags: list[str] = []
    if "--database-url" in flags:
        at = flags.index("--database-url")
        store_flags = list(flags[at : at + 2])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *openivr_command(),
                "serve",
                "--data-dir",
                str(data_dir),
                "--http-port",
                str(port),
                "--sip-port",
                "0",
                *flags,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            # A group of its own: a test can signal every process of the node, as a terminal
            # or systemd would, without signalling pytest.
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(proc, base_url, log)
        if not account:
            yield Node(base_url, "", "", "", log, proc)
            return
        email, password = f"owner-{name}@example.com", "seed-script-pass"
        ids = _create_account(data_dir, store_flags, email, password)
        r = httpx.post(
            base_url + "/SonetelAuth/beta/oauth/token",
            auth=("sonetel-api", "sonetel-api"),
            data={"grant_type": "password", "username": email, "password": password},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        yield Node(base_url, ids[0], ids[1], r.json()["access_token"], log, proc)
    finally:
        proc.terminate()  # a no-op if the test stopped it already
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        try:  # nothing of the node outlives the test (a media process holds ports)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
