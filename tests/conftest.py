"""Shared fixtures: real servers on free ports, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from openivr.server import build_asgi
from openivr.settings import Settings

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get(
    "OPENIVR_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


# The modules whose tests take longest (`pytest --durations`: real calls with drains and
# restarts, node processes, the API fuzzing), run first in this order: with `--maxschedchunk=1`
# (pyproject.toml) xdist then hands tests out one at a time in collection order, so the long
# ones start at once on every worker and the run ends on short ones instead of one worker
# finishing a long test while the other idles. Whole modules, so module-scoped fixtures are
# still made once per worker; the rest keep pytest's order after them.
SLOW_FIRST = (
    "tests/calls/test_record_by_phone.py",
    "tests/calls/test_recording_failure.py",
    "tests/api/test_schemathesis.py",
    "tests/calls/test_drain.py",
    "tests/calls/test_cluster.py",
    "tests/calls/test_baresip_hears.py",
    "tests/delivery/test_crash.py",
    "tests/calls/test_workers.py",
    "tests/calls/test_call_log.py",
    "tests/test_metrics.py",
    "tests/test_settings.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the slowest modules first (see SLOW_FIRST)."""

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::", 1)[0]
        return next(
            (i for i, path in enumerate(SLOW_FIRST) if module == path),
            len(SLOW_FIRST),
        )

    items.sort(key=rank)


def worker_ports(low: int, high: int) -> range:
    """This test worker's own share of the ports `low`..`high` - 1. Under pytest-xdist the
    range is cut into one slice per worker, so two workers never pick the same port: a port
    checked free by one could otherwise be bound by another worker's node or SIPp before the
    first one's node bound it (CI once saw 'address already in use' that way)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    if count <= 1:
        return range(low, high)
    width = (high - low) // count
    start = low + (index % count) * width
    return range(start, start + width)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for UDP and TCP alike right now, picked at random below the kernel's
    ephemeral range (32768 and up): a port the kernel hands out (bind to 0) is soon handed to
    some client socket again, and with several suites running at once that races the test's
    own bind. `kind` is kept for callers that name it; every port is checked for both."""
    del kind
    ports = worker_ports(10000, 20000)
    for _ in range(200):
        port = random.choice(ports)
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
            ):
                udp.bind(("127.0.0.1", port))
                tcp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port for UDP and TCP in {ports}")


def free_port_block(count: int = 4) -> int:
    """The first of `count` consecutive free UDP ports (even), below the ephemeral range: SIPp
    binds its media port and the next three (RTCP, video RTP and RTCP)."""
    ports = worker_ports(10000, 20000)
    for _ in range(200):
        base = random.randrange(ports.start, ports.stop - count, 2)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return base
    raise RuntimeError(f"no {count} consecutive free UDP ports in {ports}")


def wait_udp_bound(port: int, proc: Any = None, timeout: float = 20.0) -> None:
    """Wait until some process has a UDP socket on 127.0.0.1:`port` (a peer we started is
    ready to be called; on a loaded machine that can take seconds, not the tenth it usually
    does); fails early if `proc` (a Popen) exited meanwhile."""
    wanted = f"0100007F:{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            if line.split()[1] == wanted:
                return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the peer exited ({proc.returncode}) before binding {port}")
        time.sleep(0.05)
    raise AssertionError(f"nothing bound UDP 127.0.0.1:{port} within {timeout} s")


def require_binary(name: str) -> str:
    """The path of a real peer's binary; missing fails under CI and skips elsewhere."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is required under CI but is not installed")
        pytest.skip(f"{name} is not installed")
    return path


async def _pg_admin(sql: str) -> None:
    import asyncpg

    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_database(migrated: bool = True) -> str:
    """A fresh PostgreSQL database for one test; skip (or fail under CI) without a server.
    It is a copy of one this test process migrated to the newest revision once (a copy takes a
    fraction of the migrations' time); `migrated=False` gives an empty one."""
    name = "openivr_t_" + secrets.token_hex(5)
    try:
        template = f' TEMPLATE "{_migrated_template()}"' if migrated else ""
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"{template}'))
    except Exception as exc:
        if IN_CI or os.environ.get("OPENIVR_TEST_DATABASE_URL"):
            pytest.fail(f"PostgreSQL at {PG_URL} is required: {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}")
    return PG_URL.rsplit("/", 1)[0] + "/" + name


_template: list[str] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop this process's migrated template database (each xdist worker has its own)."""
    while _template:
        drop_postgres_database(PG_URL.rsplit("/", 1)[0] + "/" + _template.pop())


def _migrated_template() -> str:
    """The name of this process's database migrated to the head (made at first use, dropped
    when the test session ends); nothing connects to it but the migration, so it can be copied."""
    if not _template:
        from openivr.store.db import open_database

        async def migrate(url: str) -> None:
            async with open_database(url):
                pass

        name = "openivr_t_template_" + secrets.token_hex(5)
        url = PG_URL.rsplit("/", 1)[0] + "/" + name
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        asyncio.run(migrate(url))
        _template.append(name)
    return _template[0]


def drop_postgres_database(url: str) -> None:
    """Remove a test database."""
    name = url.rsplit("/", 1)[1]
    try:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:
        pass


@dataclass
class Account:
    """A test account with a logged-in admin."""

    account_id: str
    user_id: str
    email: str
    password: str
    token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class RunningServer:
    """An OpenIVR node running in this process on free ports."""

    settings: Settings
    base_url: str
    client: httpx.Client
    accounts: list[Account] = field(default_factory=list)

    def login(self, email: str, password: str, refresh: str = "yes") -> dict[str, Any]:
        r = self.client.post(
            "/oauth/token",
            data={
                "grant_type": "password",
                "username": email,
                "password": password,
                "refresh": refresh,
            },
            auth=("sonetel-api", "sonetel-api"),
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def account(self, name: str | None = None) -> Account:
        """Create an account through the store (as the CLI does) and log its admin in."""
        from openivr.store.accounts import create_account
        from openivr.store.db import open_database

        email = f"admin-{secrets.token_hex(4)}@example.com"
        password = "s3cret-pass"

        async def make() -> Any:
            async with open_database(self.settings.effective_database_url) as (_e, sessions):
                return await create_account(sessions, email, password, name)

        created = asyncio.run(make())
        tokens = self.login(email, password)
        acc = Account(
            created.account_id,
            created.user_id,
            email,
            password,
            tokens["access_token"],
            tokens.get("refresh_token", ""),
        )
        self.accounts.append(acc)
        return acc


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # runs in a thread
        pass


def listening_socket() -> socket.socket:
    """A TCP socket bound to a free port below the ephemeral range, for an HTTP server to take
    over: bound here, the port cannot be taken by someone else between the pick and the bind
    (with free_port it could, and the server then failed with 'address already in use')."""
    ports = worker_ports(10000, 20000)
    for _ in range(200):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", random.choice(ports)))
        except OSError:
            sock.close()
            continue
        return sock
    raise RuntimeError(f"no free TCP port in {ports}")


# A start takes well under a second on a quiet machine; this bounds a start that never ends.
SERVER_START_SECONDS = 120


def run_server(settings: Settings) -> Iterator[RunningServer]:
    """Start a node in a background thread; stop it afterwards."""
    sock = listening_socket()
    port = int(sock.getsockname()[1])
    settings = replace(settings, http_port=port)
    config = uvicorn.Config(
        build_asgi(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = _ThreadedServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + SERVER_START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.time() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    # Generous: a bound on a request that never ends, not a speed check (with both cores busy
    # a password grant once waited past 30 s for the hashing pool).
    with httpx.Client(base_url=base, timeout=90) as client:
        yield RunningServer(settings, base, client)
    server.should_exit = True
    thread.join(timeout=15)


def base_settings(tmp_path: Path, database_url: str = "", **extra: Any) -> Settings:
    """Settings for a test node: its own data dir, SIP off unless asked."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "sip_port": 0,
        # In-process nodes run SIP in their own loop, where tests reach its services.
        "workers": 0,
        "secret": "test-secret-" + secrets.token_hex(16),
        # Tests receive webhooks on 127.0.0.1; test_webhook_targets checks the default.
        "allow_private_webhooks": True,
    }
    values.update(extra)
    return replace(Settings(), **values)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store test runs on the embedded SQLite and on PostgreSQL (migrated to the newest
    revision, or empty for tests marked `empty_database`)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
        return
    url = postgres_database(migrated=request.node.get_closest_marker("empty_database") is None)
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A node on SQLite."""
    yield from run_server(base_settings(tmp_path))


@pytest.fixture
def any_server(tmp_path: Path, database_url: str) -> Iterator[RunningServer]:
    """A node on SQLite and, in a second run, on PostgreSQL."""
    yield from run_server(base_settings(tmp_path, database_url))
