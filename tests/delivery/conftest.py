"""Voicemail test parts: a real SMTP server (aiosmtpd), a webhook receiver, nodes with delivery."""

from __future__ import annotations

import asyncio
import email
import email.policy
import http.server
import json
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI

from openivr.api.app import asgi
from openivr.context import ServerContext
from openivr.delivery.deposit import deposit_voicemail
from openivr.delivery.layer import install
from openivr.settings import Settings
from tests.conftest import (
    SERVER_START_SECONDS,
    RunningServer,
    base_settings,
    free_port,
    listening_socket,
)

T = TypeVar("T")

# Fast retries so a test sees many attempts in a second or two. The lease and send timeout
# stay generous: no test here waits for one to run out, and on a loaded machine a send that
# outlived a 2 s timeout was sent again (at least once is the contract, but these tests count).
FAST_POLICY: dict[str, Any] = {
    "delivery_poll_interval": 0.05,
    "delivery_backoff_base": 0.05,
    "delivery_backoff_cap": 0.2,
    "delivery_lease": 12.0,
    "delivery_send_timeout": 8.0,
    "delivery_adopt_after": 0.0,
}


class MailHandler:
    """Receives mail; answers each DATA with `refuse` while it is set (e.g. '451 try later')."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: str | None = None
        self.refused = 0
        self.delay = 0.0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            if self.refuse:
                self.refused += 1
                return self.refuse
            raw = envelope.content if isinstance(envelope.content, bytes) else b""
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            parsed["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
            self.messages.append(parsed)
        return "250 OK"


@dataclass
class MailServer:
    """A real SMTP server on loopback; stop() makes connections be refused."""

    port: int
    handler: MailHandler = field(default_factory=MailHandler)
    controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_for(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.handler.lock:
                if len(self.handler.messages) >= count:
                    return list(self.handler.messages)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} mails, got {len(self.handler.messages)}")


@pytest.fixture
def mail() -> Iterator[MailServer]:
    """An accepting SMTP server."""
    server = MailServer(free_port())
    server.start()
    yield server
    server.stop()


class _Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        receiver: WebhookReceiver = self.server.receiver  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with receiver.lock:
            status = receiver.fail_with.pop(0) if receiver.fail_with else 204
            receiver.requests.append((dict(self.headers.items()), body, status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class WebhookReceiver:
    """An HTTP server that records POSTs; answers the statuses in fail_with first, then 204."""

    url: str = ""
    requests: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    fail_with: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for h, b, s in self.requests if s < 300]


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A webhook receiver on a free loopback port."""
    receiver = WebhookReceiver()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    httpd.receiver = receiver  # type: ignore[attr-defined]
    receiver.url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield receiver
    httpd.shutdown()
    httpd.server_close()


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


@dataclass
class VoicemailNode(RunningServer):
    """A node with the voicemail layer; runs coroutines on the node's own event loop."""

    ctx: ServerContext | None = None
    loop: asyncio.AbstractEventLoop | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def deposit(self, account_id: str, app_id: str, seconds: float = 1.0, **kw: Any) -> str:
        """Leave a message as the SIP server would."""
        assert self.ctx is not None
        n = int(8000 * seconds)
        t = np.arange(n) / 8000
        pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        args: dict[str, Any] = {
            "caller": "+46701234567",
            "dialed": "+4681234567",
            "call_id": "call-" + str(time.time_ns()),
        }
        args.update(kw)
        return self.run(
            deposit_voicemail(self.ctx, account_id=account_id, app_id=app_id, pcm=pcm, **args)
        )

    def mailbox(self, account: Any, **config: Any) -> str:
        """The account's default mailbox app, configured as given."""
        apps = self.client.get(
            f"/account/{account.account_id}/voiceapp", headers=account.headers
        ).json()["response"]
        app_id = str(next(a["app_id"] for a in apps if a["app_type"] == "mailbox"))
        if config:
            r = self.client.put(
                f"/account/{account.account_id}/voiceapp/{app_id}",
                json=config,
                headers=account.headers,
            )
            assert r.status_code == 200, r.text
        return app_id

    def message(self, account: Any, app_id: str, message_id: str) -> dict[str, Any]:
        r = self.client.get(
            f"/account/{account.account_id}/voiceapp/{app_id}/voicemail/{message_id}",
            headers=account.headers,
        )
        assert r.status_code == 200, r.text
        return dict(r.json()["response"])

    def wait_state(
        self,
        account: Any,
        app_id: str,
        message_id: str,
        check: Callable[[dict[str, Any]], bool],
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        deadline = time.time() + timeout
        while True:
            view = self.message(account, app_id, message_id)
            if check(view):
                return view
            if time.time() > deadline:
                raise AssertionError(f"state not reached: {json.dumps(view['delivery'])}")
            time.sleep(0.05)


def run_node(settings: Settings) -> Iterator[VoicemailNode]:
    """A node with the voicemail layer in a background thread."""
    sock = listening_socket()
    port = int(sock.getsockname()[1])
    settings = replace(settings, http_port=port)
    captured: dict[str, Any] = {}

    async def capture(app: FastAPI, ctx: ServerContext, stack: AsyncExitStack) -> None:
        captured["ctx"] = ctx
        captured["loop"] = asyncio.get_running_loop()

    config = uvicorn.Config(
        asgi(settings, (install, capture)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = _ThreadedServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + SERVER_START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.time() > deadline:
            raise RuntimeError("the test node did not start")
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        yield VoicemailNode(settings, base, client, ctx=captured["ctx"], loop=captured["loop"])
    server.should_exit = True
    thread.join(timeout=15)


def node_settings(tmp_path: Path, database_url: str = "", **kw: Any) -> Settings:
    """Test settings with fast delivery retries."""
    extra = dict(FAST_POLICY)
    extra.update(kw.pop("extra", {}))
    return replace(base_settings(tmp_path, database_url), extra=extra, **kw)


@pytest.fixture
def node(tmp_path: Path, mail: MailServer) -> Iterator[VoicemailNode]:
    """A SQLite node whose SMTP is the `mail` server."""
    yield from run_node(node_settings(tmp_path, smtp_url=mail.url))


@pytest.fixture
def any_node(tmp_path: Path, database_url: str, mail: MailServer) -> Iterator[VoicemailNode]:
    """A node on SQLite and, in a second run, on PostgreSQL."""
    yield from run_node(node_settings(tmp_path, database_url, smtp_url=mail.url))
