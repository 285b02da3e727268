"""Entry point of a media process that `openivr serve` starts (`processes.py`): SIP, RTP, calls.

Settings come from OPENIVR_* variables; the process prints a ready line on stdout once its
SIP server listens, and drains (new calls 503, calls in progress go on) on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

from openivr import logs
from openivr.api.app import create_app
from openivr.processes import READY
from openivr.server import MEDIA_LAYERS
from openivr.settings import Settings, from_environment

log = logging.getLogger("openivr.processes")


async def _serve_media(settings: Settings) -> None:
    app = create_app(settings, MEDIA_LAYERS)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = [0]

    def on_signal() -> None:
        # As `openivr serve`: the first signal drains the calls (the lifespan's exit), the
        # second ends them now (messages kept), a third stops without waiting.
        signals[0] += 1
        if signals[0] == 1:
            stop.set()
        elif signals[0] == 2:
            calls = getattr(app.state, "ctx", None) and app.state.ctx.calls
            if calls is not None:
                calls.stop_now.set()
        else:
            os._exit(1)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    async with app.router.lifespan_context(app):
        sys.stdout.write(READY + "\n")
        sys.stdout.flush()
        await stop.wait()
        log.info("stopping: calls in progress may go on for up to %.0f s", settings.drain_seconds)


def main() -> None:
    """Entry point of a media process (settings from OPENIVR_* variables)."""
    settings = from_environment()
    # The node's log format; lines name the worker (its node name with --workers 2 and up).
    logs.configure(settings.log_format, settings.node_name or socket.gethostname())
    try:
        import uvloop

        uvloop.run(_serve_media(settings))
    except ImportError:  # uvloop comes with uvicorn[standard]; plain asyncio works too
        asyncio.run(_serve_media(settings))


if __name__ == "__main__":
    main()
