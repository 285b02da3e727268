"""What ran on the event loop: kept so a late media-clock tick can name what delayed it.

The API, the SIP server and every call's RTP share one event loop, so anything slow a request
does on it is heard on every call. The media clock measures how late its ticks run
(`sip.clock.MediaClock`); when one is late this module tells it which API requests were on
the loop meanwhile and which garbage collections ran. Cheap enough to be always on: a dict
entry per request in flight and a short ring of the ones that ended.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections import deque
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

# How many ended requests and GC pauses are remembered (only recent ones are ever named).
_RECENT = 64


class LoopActivity:
    """API requests in flight or recently ended, and recent GC pauses, with their times."""

    def __init__(self) -> None:
        self._ids = itertools.count()
        self._active: dict[int, tuple[str, float]] = {}
        self._ended: deque[tuple[float, float, str]] = deque(maxlen=_RECENT)
        self._gc: deque[tuple[float, float, int]] = deque(maxlen=_RECENT)
        self._gc_started = 0.0
        self.gc_pause_max = 0.0

    def request_started(self, label: str) -> int:
        """Note a request starting; returns its token for request_ended."""
        token = next(self._ids)
        self._active[token] = (label, time.monotonic())
        return token

    def request_ended(self, token: int) -> None:
        """Note a request ending."""
        entry = self._active.pop(token, None)
        if entry is not None:
            self._ended.append((entry[1], time.monotonic(), entry[0]))

    def gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        """For gc.callbacks: time every collection."""
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
            return
        pause = now - self._gc_started
        self.gc_pause_max = max(self.gc_pause_max, pause)
        self._gc.append((time.monotonic(), pause, int(info.get("generation", -1))))

    def watch_gc(self) -> None:
        """Start timing garbage collections (idempotent)."""
        if self.gc_callback not in gc.callbacks:
            gc.callbacks.append(self.gc_callback)

    def unwatch_gc(self) -> None:
        """Stop timing garbage collections."""
        if self.gc_callback in gc.callbacks:
            gc.callbacks.remove(self.gc_callback)

    def during(self, since: float) -> str:
        """What was on the loop since a monotonic time: requests and GC pauses, or 'nothing'."""
        now = time.monotonic()
        parts = [
            f"{label} ({(now - t0) * 1000:.0f} ms so far)" for label, t0 in self._active.values()
        ]
        parts += [
            f"{label} ({(t1 - t0) * 1000:.0f} ms)" for t0, t1, label in self._ended if t1 >= since
        ]
        parts += [
            f"gc gen {generation} ({pause * 1000:.1f} ms)"
            for at, pause, generation in self._gc
            if at >= since
        ]
        if not parts:
            return "no API request or GC (SIP and media only)"
        more = f" and {len(parts) - 8} more" if len(parts) > 8 else ""
        return ", ".join(parts[:8]) + more


activity = LoopActivity()


class RequestActivity:
    """ASGI middleware: every HTTP request is noted in `activity` while it runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = activity.request_started(f"{scope['method']} {scope['path']}")
        try:
            await self.app(scope, receive, send)
        finally:
            activity.request_ended(token)
