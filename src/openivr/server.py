"""One `openivr serve` node: the API plus the layers that extend it."""

from __future__ import annotations

import asyncio
import gc
from contextlib import AsyncExitStack

from fastapi import FastAPI
from starlette.types import ASGIApp

from openivr import loopwatch
from openivr.api.app import Extension, asgi
from openivr.api.context import ServerContext
from openivr.calls import extension as calls
from openivr.delivery import extension as delivery
from openivr.delivery.email import SmtpServer
from openivr.settings import Settings
from openivr.sip.connect import parse_trunk
from openivr.sip.media import LATE_TICK


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


# Order matters: the loop's debug mode first (--loop-debug), then delivery (voicemail hand-off),
# then the SIP server that uses it, then the heap is settled once everything has started.
EXTENSIONS: tuple[Extension, ...] = (watch_loop, delivery.install, calls.install, settle_heap)


def check_settings(settings: Settings) -> None:
    """Refuse, before anything starts, settings a layer could not start with (ValueError naming
    the setting), with the same parsers the layers use."""
    if settings.smtp_url:
        SmtpServer.from_url(
            settings.smtp_url, settings.smtp_starttls, settings.smtp_from, settings.smtp_ca_file
        )
    if settings.sip_port:
        calls.parse_port_range(settings.rtp_ports)
        parse_trunk(settings.sip_trunk)


def build_asgi(settings: Settings) -> ASGIApp:
    """The node's ASGI application with every layer installed."""
    return asgi(settings, EXTENSIONS)
