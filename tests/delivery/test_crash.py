"""A real `openivr serve`-like process killed with SIGKILL while deliveries are pending."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from openivr.context import ServerContext
from openivr.delivery.deposit import deposit_voicemail
from openivr.settings import from_environment
from openivr.store.db import open_database
from tests.conftest import RunningServer, free_port
from tests.delivery.conftest import MailServer
from tests.node_process import START_SECONDS

# The node as `openivr serve` runs it, with the voicemail layer installed.
LAUNCHER = """
import uvicorn
from openivr.api.app import asgi
from openivr.delivery.layer import install
from openivr.settings import from_environment
s = from_environment()
uvicorn.run(asgi(s, (install,)), host="127.0.0.1", port=s.http_port, log_level="warning")
"""


class Node:
    """One node process on the shared data dir and database."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.env['OPENIVR_HTTP_PORT']}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER], env=self.env, stdout=out, stderr=out
            )
        deadline = time.time() + START_SECONDS
        while time.time() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("the node did not start: " + self.log.read_text())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def node_env(tmp_path: Path, database_url: str, mail: MailServer) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    env.update(
        OPENIVR_DATA_DIR=str(tmp_path / "data"),
        OPENIVR_DATABASE_URL=database_url,
        OPENIVR_HTTP_PORT=str(free_port()),
        OPENIVR_SIP_PORT="0",
        OPENIVR_SECRET="crash-test-secret",
        OPENIVR_SMTP_URL=mail.url,
        OPENIVR_DELIVERY_POLL_INTERVAL="0.05",
        OPENIVR_DELIVERY_BACKOFF_BASE="0.05",
        OPENIVR_DELIVERY_BACKOFF_CAP="0.3",
        # Sends that outlive their timeout or lease are sent again (at least once is the
        # contract); on a loaded machine 1.5 s was outlived and a mail came three times. The
        # restart in phase 3 waits for the killed node's leases to run out, so not longer.
        OPENIVR_DELIVERY_LEASE="8",
        OPENIVR_DELIVERY_SEND_TIMEOUT="5",
        OPENIVR_DELIVERY_CONCURRENCY="4",
    )
    yield env


async def _deposit_many(env: dict[str, str], account_id: str, app_id: str, n: int) -> list[str]:
    settings = from_environment(env=env)
    pcm = (np.arange(4000) % 50).astype(np.int16)
    async with open_database(settings.effective_database_url) as (engine, sessions):
        ctx = ServerContext.build(settings, engine, sessions)
        return [
            await deposit_voicemail(
                ctx,
                account_id=account_id,
                app_id=app_id,
                caller=f"+4670{i:07d}",
                dialed="+468000",
                pcm=pcm,
                call_id=f"call-{i}",
            )
            for i in range(n)
        ]


def test_sigkill_with_pending_deliveries_then_restart_delivers_all(
    tmp_path: Path, node_env: dict[str, str], mail: MailServer
) -> None:
    node = Node(node_env, tmp_path / "node.log")
    try:
        mail.handler.refuse = "451 4.3.0 mail system busy"
        node.start()
        settings = from_environment(env=node_env)
        with httpx.Client(base_url=node.base, timeout=30) as client:
            acc = RunningServer(settings, node.base, client).account()
            apps = client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()
            box = next(a["app_id"] for a in apps["response"] if a["app_type"] == "mailbox")
            r = client.put(
                f"/account/{acc.account_id}/voiceapp/{box}",
                json={"deliver_to": "email", "deliver_to_details": "crash@example.com"},
                headers=acc.headers,
            )
            assert r.status_code == 200, r.text
        ids = asyncio.run(_deposit_many(node_env, acc.account_id, box, 30))

        # Phase 1: the mail server refuses; kill the node while it keeps retrying.
        deadline = time.time() + 30
        while mail.handler.refused < 30 and time.time() < deadline:
            time.sleep(0.05)
        assert mail.handler.refused >= 30
        node.kill()

        # Phase 2: the mail server accepts, slowly; kill the node in the middle of sending.
        mail.handler.refuse = None
        mail.handler.delay = 0.1
        node.start()
        mail.wait_for(5)
        node.kill()
        before_restart = len(mail.handler.messages)
        assert before_restart < 30

        # Phase 3: restart; everything arrives.
        mail.handler.delay = 0
        node.start()
        with httpx.Client(base_url=node.base, timeout=30) as client:
            deadline = time.time() + 90
            while True:
                listed = client.get(
                    f"/account/{acc.account_id}/voiceapp/{box}/voicemail",
                    params={"limit": 100},
                    headers=acc.headers,
                ).json()["response"]
                if all(m["delivery_state"] == "delivered" for m in listed):
                    break
                assert time.time() < deadline, listed
                time.sleep(0.1)
        assert sorted(m["message_id"] for m in listed) == sorted(ids)
        received = collections.Counter(m["X-OpenIVR-Message"] for m in mail.handler.messages)
        assert set(received) == set(ids)  # none lost
        assert max(received.values()) <= 2  # at most twice (a kill between send and commit)
        # A repeat carries the same Message-ID, so the mailbox can tell.
        by_msg: dict[str, set[str]] = collections.defaultdict(set)
        for m in mail.handler.messages:
            by_msg[m["X-OpenIVR-Message"]].add(m["Message-ID"])
        assert all(len(v) == 1 for v in by_msg.values())
    finally:
        node.stop()
