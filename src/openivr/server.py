"""One `openivr serve` node: the API plus the layers that extend it."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import sys
from contextlib import AsyncExitStack
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from openivr import loopwatch, processes
from openivr.api.app import NodeLayer, asgi
from openivr.calls import layer as calls
from openivr.calls import recordings
from openivr.calls.layer import CallService
from openivr.context import ServerContext
from openivr.delivery import layer as delivery
from openivr.delivery.email import SmtpServer
from openivr.guard import layer as guard
from openivr.guard.addresses import Networks
from openivr.guard.flood import FloodGate
from openivr.guard.guessing import GuessPolicy
from openivr.logs import FORMATS, AccessLog
from openivr.processes import MediaWorkers
from openivr.settings import Settings
from openivr.sip import srtp
from openivr.sip.clock import LATE_TICK
from openivr.sip.connect import parse_trunk

log = logging.getLogger(__name__)


async def settle_heap(_app: FastAPI, _ctx: ServerContext, stack: AsyncExitStack) -> None:
    """Keep what start-up built (150,000 objects: the API, ORM, migrations) out of the garbage
    collector's full passes: one such pass takes ~90 ms, a stall every call would hear."""
    gc.collect()
    gc.freeze()
    stack.callback(gc.unfreeze)  # collectable again once the node stops (tests start many)
    # From now on every collection is timed, so a late media tick can name a GC pause.
    loopwatch.activity.watch_gc()
    stack.callback(loopwatch.activity.unwatch_gc)


async def watch_loop(_app: FastAPI, ctx: ServerContext, stack: AsyncExitStack) -> None:
    """--loop-debug: the loop logs each callback that held it longer than a late tick, by name."""
    if not ctx.settings.loop_debug:
        return
    loop = asyncio.get_running_loop()
    before = (loop.get_debug(), loop.slow_callback_duration)
    loop.set_debug(True)
    loop.slow_callback_duration = LATE_TICK

    def restore() -> None:
        loop.set_debug(before[0])
        loop.slow_callback_duration = before[1]

    stack.callback(restore)


# Everything in one process (`--workers 0`, the default off Linux, and the in-process nodes of
# tests and benches). Order matters: the loop's debug mode first (--loop-debug), the security log's upkeep,
# then delivery (voicemail hand-off), then the SIP server that uses it, then the heap is settled
# once everything has started.
LAYERS: tuple[NodeLayer, ...] = (
    watch_loop,
    guard.install,
    delivery.install,
    recordings.install_retention,
    calls.install,
    settle_heap,
)
# `openivr serve` on Linux (`--workers 1`, or N): the API process delivers voicemail and starts
# the media processes once its migrations ran; each media process runs SIP (both keep the
# security log's upkeep).
API_LAYERS: tuple[NodeLayer, ...] = (
    watch_loop,
    guard.install,
    delivery.install,
    recordings.install_retention,
    processes.start_media_processes,
    settle_heap,
)
MEDIA_LAYERS: tuple[NodeLayer, ...] = (watch_loop, guard.install, calls.install, settle_heap)


def check_settings(settings: Settings) -> None:
    """Refuse, before anything starts, settings a layer could not start with (ValueError naming
    the setting), with the same parsers the layers use."""
    Networks.parse(settings.trusted_networks)
    FloodGate(settings.sip_rate_limit, settings.sip_rate_burst)
    Networks.parse(settings.metrics_networks, "metrics_networks")
    if settings.log_format not in FORMATS:
        raise ValueError(f"log_format: must be text or json, got {settings.log_format!r}")
    GuessPolicy(
        failures=settings.auth_failures,
        window=settings.auth_window,
        ban_seconds=settings.auth_ban_seconds,
        ban_max_seconds=settings.auth_ban_max_seconds,
    )
    recordings.check(settings)
    if settings.smtp_url:
        SmtpServer.from_url(
            settings.smtp_url, settings.smtp_starttls, settings.smtp_from, settings.smtp_ca_file
        )
    if settings.sip_port:
        low, high = calls.parse_port_range(settings.rtp_ports)
        parse_trunk(settings.sip_trunk)
        calls.tls_of(settings)
        srtp.parse_mode(settings.srtp)
        if settings.workers < 0:
            raise ValueError(f"--workers must be 0 or more, got {settings.workers}")
        if settings.sip_port + max(0, settings.workers - 1) > 65535:
            raise ValueError(f"--sip-port {settings.sip_port} leaves no port for every worker")
        if settings.workers > 1 and (high - low + 1) // settings.workers < 4:
            raise ValueError(f"--rtp-ports {settings.rtp_ports} is too small for the workers")


def build_asgi(settings: Settings) -> ASGIApp:
    """The node's ASGI application: with media processes (--workers N) or all in one."""
    split = settings.workers > 0 and settings.sip_port != 0
    app = asgi(settings, API_LAYERS if split else LAYERS)
    return AccessLog(app) if settings.access_log else app


def node_context(app: ASGIApp) -> ServerContext | None:
    """The running node's context behind `build_asgi`'s application and the middleware that
    wraps it (None before start-up)."""
    layer: Any = app
    for _ in range(10):
        ctx = getattr(getattr(layer, "state", None), "ctx", None)
        if isinstance(ctx, ServerContext):
            return ctx
        layer = getattr(layer, "app", None)
        if layer is None:
            break
    return None


class NodeServer(uvicorn.Server):
    """uvicorn for `openivr serve`. The first stop signal (SIGTERM, Ctrl-C) drains the node's
    calls (in this process, or in every media process with --workers) while the API keeps
    answering (`/healthz` and `/readyz` say draining); a second ends the calls at once (BYE,
    messages kept) and stops; a third stops without waiting for anything."""

    def __init__(self, config: uvicorn.Config, node: ASGIApp):
        super().__init__(config)
        self.node = node
        self.stops = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, remembering the loop the signals hand work to."""
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """A stop signal: drain first, end calls now second, uvicorn's own handling after."""
        ctx = node_context(self.node)
        calls = ctx.calls if ctx is not None else None
        workers = ctx.media_workers if ctx is not None else None
        loop = self._loop
        if (
            ctx is None
            or (calls is None and workers is None)
            or loop is None
            or not self.started
            or self.should_exit
        ):
            super().handle_exit(sig, frame)
            return
        self.stops += 1
        if self.stops == 1:
            self._captured_signals.append(sig)  # re-raised after a clean stop, as uvicorn does
            loop.call_soon_threadsafe(self._begin_drain, ctx, calls, workers)
        elif self.stops == 2:
            print("openivr: stopping now: ending calls (messages are kept)", file=sys.stderr)
            if calls is not None:
                loop.call_soon_threadsafe(calls.stop_now.set)
            if workers is not None:
                loop.call_soon_threadsafe(workers.drain)  # their second signal
        else:
            super().handle_exit(sig, frame)

    def _begin_drain(
        self, ctx: ServerContext, calls: CallService | None, workers: MediaWorkers | None
    ) -> None:
        ctx.stopping = True
        if workers is not None:
            workers.drain()  # the media processes drain at once, each on its own

        async def drain() -> None:
            try:
                if calls is not None:
                    await calls.drain(ctx.settings.drain_seconds)
                if workers is not None:
                    # The API answers (/readyz: draining) until the last call of the node ended.
                    await workers.stop()
            except Exception:  # the node must stop all the same
                log.exception("draining the calls failed")
            finally:
                self.should_exit = True

        self._drain = asyncio.get_running_loop().create_task(drain())
