"""`openivr serve --workers N`'s media processes: SIP and RTP apart from the API, one per worker.

The API runs in the process `openivr serve` starts; calls run in N media processes it starts
once the database is migrated, each a full SIP/RTP node on its own port (`--sip-port` + i) and
slice of `--rtp-ports`, sharing the database and data dir, each running `media_main.py`. Why
apart: every request the API serves is Python work (parsing, ORM, JSON, the simulator) that
holds the GIL; in one process it delays the media clock, and a thread holding the GIL makes the
loop wait up to the switch interval after each socket call (the convoy effect). In its own
process the media loop competes only for the CPU, and the API process runs at nice +5 so the
media side goes first on a busy core. `--workers 0` (the default) keeps one process.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import fields, replace
from pathlib import Path

from fastapi import FastAPI

from openivr.context import ServerContext
from openivr.settings import Settings

log = logging.getLogger("openivr.processes")  # also when run as __main__
READY = "openivr-media-ready"
# The API process's nice value relative to its media processes.
API_NICE = 5


def worker_settings(settings: Settings, index: int) -> Settings:
    """Settings of media process `index` of `settings.workers`: its SIP port and RTP slice."""
    count = max(1, settings.workers)
    low, high = (int(p) for p in settings.rtp_ports.split("-", 1))
    span = (high - low + 1) // count
    first = low + index * span
    last = high if index == count - 1 else first + span - 1
    if count == 1:
        return settings
    name = settings.node_name or os.uname().nodename
    return replace(
        settings,
        sip_port=settings.sip_port + index,
        sip_tls_port=settings.sip_tls_port + index if settings.sip_tls_port else 0,
        rtp_ports=f"{first}-{last}",
        node_name=f"{name}-{index + 1}",
        max_calls=max(1, settings.max_calls // count),
    )


def environment(settings: Settings) -> dict[str, str]:
    """OPENIVR_* variables that give a child process exactly these settings."""
    env = dict(os.environ)
    for f in fields(Settings):
        if f.name == "extra":
            continue
        value = getattr(settings, f.name)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple):
            text = ",".join(value)
        else:
            text = str(value)
        env[f"OPENIVR_{f.name.upper()}"] = text
    return env


def dispatcher_list(settings: Settings) -> str:
    """Kamailio dispatcher entries (set 1) for the media processes of this node."""
    host = settings.sip_advertise or settings.sip_host
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in host:
        host = f"[{host}]"
    return "".join(
        f"1 sip:{host}:{settings.sip_port + i}\n" for i in range(max(1, settings.workers))
    )


def _die_with_parent() -> None:
    # A media process must not outlive `openivr serve` (killed with SIGKILL, it cannot stop
    # its children): PR_SET_PDEATHSIG sends SIGTERM to the child when the parent goes.
    if sys.platform == "linux":
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _lower_priority() -> None:
    """The API process at nice +API_NICE: every thread it has (Linux's nice is per thread);
    threads started later inherit it from the loop's thread."""
    if sys.platform != "linux":
        return
    for task in Path("/proc/self/task").iterdir():
        try:
            current = os.getpriority(os.PRIO_PROCESS, int(task.name))
            os.setpriority(os.PRIO_PROCESS, int(task.name), max(current, API_NICE))
        except (OSError, ValueError) as exc:
            log.debug("thread %s keeps its priority: %s", task.name, exc)


class MediaProcess:
    """One media process: started, restarted if it dies, stopped with the node (drained)."""

    def __init__(self, settings: Settings, index: int) -> None:
        self.settings = worker_settings(settings, index)
        self.index = index
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the process and wait until its SIP server listens; RuntimeError if it fails."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "openivr.media_main"],
            env=environment(self.settings),
            stdout=subprocess.PIPE,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads call Popen meanwhile)
        )
        assert self.proc.stdout is not None
        line = await asyncio.to_thread(self.proc.stdout.readline)
        if line.decode(errors="replace").strip() != READY:
            code = await asyncio.to_thread(self.proc.wait)
            raise RuntimeError(
                f"media process {self.index + 1} (SIP port {self.settings.sip_port}) "
                f"did not start (exit {code}); its error is logged above"
            )
        self._watch = asyncio.get_running_loop().create_task(self._restart_when_it_dies())

    async def _restart_when_it_dies(self) -> None:
        while not self._stopping:
            assert self.proc is not None
            code = await asyncio.to_thread(self.proc.wait)
            if self._stopping:
                return
            log.error(
                "media process %d (SIP port %d) exited with %s; starting it again",
                self.index + 1,
                self.settings.sip_port,
                code,
            )
            await asyncio.sleep(1.0)
            try:
                await self.start()
            except RuntimeError:
                log.exception("media process %d could not be restarted", self.index + 1)
            return  # start() began a new watch

    async def stop(self) -> None:
        """Ask it to drain and stop (SIGTERM), wait for it; kill it if it hangs."""
        self._stopping = True
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        limit = self.settings.drain_seconds + 15
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), limit)
        except TimeoutError:
            log.error("media process %d did not stop in %.0f s; killing it", self.index + 1, limit)
            proc.kill()
            await asyncio.to_thread(proc.wait)


async def start_media_processes(_app: FastAPI, ctx: ServerContext, stack: AsyncExitStack) -> None:
    """Start the node's media processes (after migrations ran); stop them when it stops."""
    settings = ctx.settings
    if settings.workers <= 0 or settings.sip_port == 0:
        return
    processes = [MediaProcess(settings, i) for i in range(settings.workers)]

    async def stop_all() -> None:
        await asyncio.gather(*(p.stop() for p in processes))

    stack.push_async_callback(stop_all)
    started = time.monotonic()
    await asyncio.gather(*(p.start() for p in processes))
    _lower_priority()  # after the start: media processes must not inherit it
    if settings.workers > 1:
        path = Path(settings.data_dir) / f"dispatcher-{settings.node_name or 'node'}.list"
        path.write_text(dispatcher_list(settings))
        log.info("Kamailio dispatcher list of the %d media processes: %s", settings.workers, path)
    log.info(
        "%d media process(es) listening for SIP from port %d (%.1f s)",
        settings.workers,
        settings.sip_port,
        time.monotonic() - started,
    )
