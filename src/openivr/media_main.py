"""Entry point of a media process that `openivr serve` starts (`processes.py`): SIP, RTP, calls.

Settings come from OPENIVR_* variables; the process prints a ready line on stdout once its
SIP server listens, and drains (new calls 503, calls in progress go on) on the API process's
STEP_SIGNAL (SIGTERM or SIGINT when it runs without one). On its control socket (from the API
process) it answers `numbers` with its `MediaNumbers` and places callbacks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

from fastapi import FastAPI

from openivr import logs
from openivr.api.app import create_app
from openivr.apps.callbacks.schema import CallbackPlan, CallbackRefused
from openivr.mediastart import CONTROL_FD, READY, START, STEP_SIGNAL
from openivr.metrics import media_numbers
from openivr.server import MEDIA_LAYERS
from openivr.settings import Settings, from_environment

log = logging.getLogger("openivr.processes")


async def _callback(app: FastAPI, plan_json: str) -> str:
    """Place a callback the API process checked: `ok`, or `refused <why>`."""
    placer = app.state.ctx.callbacks
    if placer is None:
        return "refused this process runs no SIP"
    try:
        await placer.place(CallbackPlan.from_json(plan_json))
    except CallbackRefused as exc:
        return f"refused {exc}"
    except (ValueError, KeyError, TypeError) as exc:
        log.error("a callback the API process sent could not be read: %r", exc)
        return "refused the callback could not be read"
    return "ok"


async def _answer(app: FastAPI, control: socket.socket, stop: asyncio.Event) -> None:
    """Answer the API process's questions (`numbers <n>`: `<n> <MediaNumbers>`; `callback <n>
    <plan>`: `<n> ok` or `<n> refused <why>`); when it closes the socket (or goes), the
    process stops."""
    reader, writer = await asyncio.open_connection(sock=control)
    try:
        while line := await reader.readline():
            word, _, ask = line.decode(errors="replace").strip().partition(" ")
            if word == "numbers":
                writer.write(f"{ask} {media_numbers(app.state.ctx).to_json()}\n".encode())
                await writer.drain()
            elif word == "callback":
                ask, _, plan = ask.partition(" ")
                writer.write(f"{ask} {await _callback(app, plan)}\n".encode())
                await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
        stop.set()


def _told_to_start(control: socket.socket) -> bool:
    """Wait for the API process's START (it sends it once the database is ready); False when
    it closed the socket instead (it failed to start, or launched this one for nothing)."""
    line = b""
    while not line.endswith(b"\n"):
        try:
            byte = control.recv(1)  # one byte at a time: what follows belongs to the loop
        except InterruptedError:
            continue
        except OSError:
            return False
        if not byte:
            return False
        line += byte
    return line == START


async def _serve_media(settings: Settings, control: socket.socket | None) -> None:
    app = create_app(settings, MEDIA_LAYERS)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = [0]
    tasks: list[asyncio.Task[None]] = []

    async def drain() -> None:
        # New calls 503 at once, calls in progress go on (up to --drain-seconds). Started by
        # `openivr serve`, the process then keeps answering 503 until the API process closes
        # its control socket (when every media process of the node has drained).
        ctx = app.state.ctx
        ctx.stopping = True
        try:
            if ctx.calls is not None:
                await ctx.calls.drain(settings.drain_seconds)
        finally:
            if control is None:
                stop.set()

    def on_signal() -> None:
        # As `openivr serve`: the first signal drains the calls, the second ends them now
        # (messages kept), a third stops without waiting.
        signals[0] += 1
        if signals[0] == 1:
            log.info(
                "stopping: calls in progress may go on for up to %.0f s", settings.drain_seconds
            )
            tasks.append(loop.create_task(drain()))
        elif signals[0] == 2:
            calls = getattr(app.state, "ctx", None) and app.state.ctx.calls
            if calls is not None:
                calls.stop_now.set()
        else:
            os._exit(1)

    # Under `openivr serve` the API process hears the stop signals and passes each on; SIGINT
    # and SIGTERM stay ignored here (processes.py says why).
    for sig in (STEP_SIGNAL,) if control is not None else (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    async with app.router.lifespan_context(app):
        if control is not None:
            tasks.append(loop.create_task(_answer(app, control, stop)))
        sys.stdout.write(READY + "\n")
        sys.stdout.flush()
        # Nobody reads the pipe after this line: anything written to stdout later (a library's
        # message) goes to the node's log, where it cannot fill the pipe and block the calls.
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        await stop.wait()
    for task in tasks:
        task.cancel()


def main() -> None:
    """Entry point of a media process (settings from OPENIVR_* variables)."""
    settings = from_environment()
    # The node's log format; lines name the worker (its node name with --workers 2 and up).
    logs.configure(settings.log_format, settings.node_name or socket.gethostname())
    control = None
    if CONTROL_FD in os.environ:
        control = socket.socket(fileno=int(os.environ.pop(CONTROL_FD)))
        if not _told_to_start(control):
            return
    try:
        import uvloop

        uvloop.run(_serve_media(settings, control))
    except ImportError:  # uvloop comes with uvicorn[standard]; plain asyncio works too
        asyncio.run(_serve_media(settings, control))


if __name__ == "__main__":
    main()
