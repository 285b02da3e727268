"""How the node logs: plain text, or one JSON object per line (`--log-format json`).

Every line written while a call is being handled carries its Call-ID: the SIP server sets
`call_id` in a context variable when it starts routing an INVITE, and each task the call
starts inherits it, so lines from the router, the driver, transfers and voicemail all carry it
without passing it around. A JSON line also names the node, so logs of a cluster join by
Call-ID; fields given as `extra=` (a security event's source and user, say) become fields too.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The Call-ID of the call the running code works for, if any.
call_id: ContextVar[str | None] = ContextVar("openivr_call_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class CallContext(logging.Filter):
    """Puts the current call's Call-ID on each record (unless the record names one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; add `call_id` when a call is in context."""
        if getattr(record, "call_id", None) is None:
            current = call_id.get()
            if current is not None:
                record.call_id = current
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, node, message, then its fields."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        stamp = datetime.fromtimestamp(record.created, UTC)
        out: dict[str, Any] = {
            "time": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "node": self.node,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(log_format: str, node: str, level: int = logging.INFO) -> None:
    """Send the process's log lines to stderr in the chosen format (replacing other handlers)."""
    if log_format not in FORMATS:
        raise ValueError(f"log_format: must be text or json, got {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CallContext())
    if log_format == "json":
        handler.setFormatter(JsonFormatter(node))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


access = logging.getLogger("openivr.access")
# Probes that balancers and monitors send every few seconds: logged only when they fail.
_PROBES = ("/healthz", "/readyz", "/metrics")


class AccessLog:
    """One INFO line per HTTP request: client, method, path, status and time taken. The query
    string is left out: signed audio links carry their signature there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and log how it went."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = str(scope.get("path", ""))
            if status >= 400 or path not in _PROBES:
                client = scope.get("client") or ("-", 0)
                access.info(
                    '%s "%s %s" %s %.1f ms',
                    client[0],
                    scope.get("method", ""),
                    path,
                    status or "-",
                    (time.perf_counter() - started) * 1000,
                )
