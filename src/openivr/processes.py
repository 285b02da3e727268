"""`openivr serve`'s media processes: SIP and RTP apart from the API, one per worker (`--workers`).

The API runs in the process `openivr serve` starts; calls run in N media processes it launches
first thing and lets start once the database is migrated (`mediastart.py`), each a full SIP/RTP
node on its own port (`--sip-port` + i) and slice of `--rtp-ports`, sharing the database and
data dir, each running `media_main.py`. Why
apart: every request the API serves is Python work (parsing, ORM, JSON, the simulator) that
holds the GIL; in one process it delays the media clock, and a thread holding the GIL makes the
loop wait up to the switch interval after each socket call (the convoy effect). In its own
process the media loop competes only for the CPU, and the API process runs at SCHED_IDLE, so
on a busy core the kernel hands the CPU to a media process the instant it wakes. One media
process is the default on Linux; `--workers 0` keeps everything in one process.

The API process keeps a control socket to each media process (a socket pair made at start):
at each `/metrics` scrape and `/readyz` it asks for the process's `MediaNumbers` (calls,
the media clock's lag, SIP listening and draining) and reports the node's sum. Stopping goes
through all of them: the first stop signal drains every media process while the API answers
(`/readyz` says draining) and the node exits when the last of them has, a second ends their
calls at once. Only the API process hears stop signals: a media process ignores SIGINT and
SIGTERM (Ctrl-C in a terminal and systemd's stop reach every process of the node at once, which
would count twice) and takes each step from the API process as STEP_SIGNAL.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path

from fastapi import FastAPI

from openivr.apps.callbacks.schema import CallbackPlan, CallbackRefused
from openivr.context import ServerContext
from openivr.mediastart import (
    READY,
    START,
    STEP_SIGNAL,
    Launched,
    launch,
    prelaunched,
    worker_settings,
)
from openivr.metrics import MediaNumbers
from openivr.settings import Settings

log = logging.getLogger("openivr.processes")  # also when run as __main__
# How long the API waits for a media process's numbers before calling it not answering.
ASK_SECONDS = 2.0
# How long a media process may take to exit once told to stop (its calls already drained).
FINISH_SECONDS = 15.0
# The API process's nice value where SCHED_IDLE is refused (the lowest there is).
API_NICE = 19


def dispatcher_list(settings: Settings) -> str:
    """Kamailio dispatcher entries (set 1) for the media processes of this node."""
    host = settings.sip_advertise or settings.sip_host
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in host:
        host = f"[{host}]"
    return "".join(
        f"1 sip:{host}:{settings.sip_port + i}\n" for i in range(max(1, settings.workers))
    )


def yield_cpu(pid: int = 0, keep: tuple[int, ...] = ()) -> str:
    """Put every thread of process `pid` (0: this one) but those in `keep` at the lowest CPU
    priority Linux has, SCHED_IDLE (nice 19 where that is refused); returns which one it got
    ("" elsewhere).

    Under SCHED_IDLE the kernel preempts the thread the instant a normal task wakes on its core,
    so a media clock whose timer fires never waits for the API's work (at nice +5 it waited up
    to a scheduler slice: ticks 29 ms late, sends 57 ms apart with 300 talking callers while the
    API was busy). The API still has any CPU nobody else wants. Threads started later inherit
    the policy from the thread that starts them, so doing it once after start-up is enough.
    """
    if sys.platform != "linux":
        return ""
    got = ""
    for task in Path(f"/proc/{pid or os.getpid()}/task").iterdir():
        tid = int(task.name)
        if tid in keep:
            continue
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            got = got or "idle"
        except OSError as exc:  # a sandbox may forbid it: the lowest nice instead
            log.debug("thread %d: no SCHED_IDLE (%s), nice %d", tid, exc, API_NICE)
            try:
                os.setpriority(os.PRIO_PROCESS, tid, API_NICE)
                got = "nice"
            except OSError as nice_exc:
                log.debug("thread %d keeps its priority: %s", tid, nice_exc)
    return got


class Spawner:
    """The one thread of the API process that starts media processes, kept at the node's own
    CPU priority when `yield_cpu` lowers the others: a process inherits the scheduling policy
    and nice value of the thread that forks it, and an unprivileged process never gets back from
    SCHED_IDLE or nice 19, so a media process started again after a crash would carry every
    call at the API's priority. The thread must outlive the processes it starts (their
    PR_SET_PDEATHSIG follows the thread that forked them)."""

    NAME = "openivr-spawner"

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=self.NAME)
        self.thread_id = self._pool.submit(self._named).result()

    def _named(self) -> int:
        if sys.platform == "linux":  # named for ps and /proc (PR_SET_NAME, 15 bytes at most)
            try:
                ctypes.CDLL(None, use_errno=True).prctl(15, self.NAME.encode())
            except (OSError, AttributeError):
                pass
        return threading.get_native_id()

    async def launch(self, settings: Settings) -> Launched:
        """Launch a media process from the spawner's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, launch, settings)

    def close(self) -> None:
        """Let the thread end (after the processes it started have)."""
        self._pool.shutdown(wait=False)


class MediaProcess:
    """One media process: started, restarted if it dies, stopped with the node (drained)."""

    def __init__(self, settings: Settings, index: int, spawner: Spawner) -> None:
        self.settings = worker_settings(settings, index)
        self.index = index
        self.spawner = spawner
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None
        self._control: socket.socket | None = None
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._asking = asyncio.Lock()
        self._asked = 0

    async def start(self) -> None:
        """Start the process (the one `serve` launched ahead, if any) and wait until its SIP
        server listens; RuntimeError if it fails."""
        self._close_control()
        launched = prelaunched(self.index, self.settings) or await self.spawner.launch(
            self.settings
        )
        self.proc, self._control = launched.proc, launched.control
        try:
            self._control.sendall(START)
        except OSError:  # it died already: its exit code is reported below
            pass
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

    def _close_control(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
        elif self._control is not None:
            self._control.close()
        self._streams = None
        self._control = None

    async def numbers(self) -> MediaNumbers | None:
        """What the process counts now (its calls, media clock, SIP); None if it does not
        answer within ASK_SECONDS (starting again, stopped or busy)."""
        answer = await self.ask("numbers")
        if answer is None:
            return None
        try:
            return MediaNumbers.from_json(answer)
        except (ValueError, TypeError) as exc:
            log.warning("media process %d answered no numbers: %r", self.index + 1, exc)
            return None

    async def place_callback(self, plan: CallbackPlan) -> str | None:
        """Have the process place a callback: "" when it took it, else why not (None when it
        does not answer)."""
        answer = await self.ask("callback", plan.to_json())
        if answer is None:
            return None
        word, _, reason = answer.decode(errors="replace").partition(" ")
        return "" if word == "ok" else reason or "refused"

    async def ask(self, question: str, payload: str = "") -> bytes | None:
        """One question on the control socket (`<question> <n> [payload]`), its answer line
        (`<n> <answer>`); None if the process does not answer within ASK_SECONDS."""
        async with self._asking:
            if self._control is None or self.proc is None or self.proc.poll() is not None:
                return None
            self._asked += 1
            try:
                if self._streams is None:
                    self._streams = await asyncio.open_connection(sock=self._control)
                reader, writer = self._streams
                line = f"{question} {self._asked}{f' {payload}' if payload else ''}\n"
                writer.write(line.encode())
                async with asyncio.timeout(ASK_SECONDS):
                    while True:  # an answer too late for an earlier question is skipped
                        asked, _, answer = (await reader.readline()).partition(b" ")
                        if not asked:
                            raise ConnectionError("control socket closed")
                        if asked == str(self._asked).encode():
                            return answer.rstrip(b"\n")
            except (OSError, TimeoutError) as exc:
                log.warning("media process %d did not answer: %r", self.index + 1, exc)
                if isinstance(exc, OSError):
                    self._close_control()
                return None

    def drain(self) -> None:
        """Tell the process to drain (its first stop signal); a second call ends its calls."""
        self._stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(STEP_SIGNAL)

    async def drained(self, limit: float) -> None:
        """Wait until the process has no call left while draining (or is gone), at most
        `limit` seconds."""
        deadline = time.monotonic() + limit
        while self.proc is not None and self.proc.poll() is None:
            numbers = await self.numbers()
            if numbers is not None and numbers.draining and not numbers.calls_up:
                return
            if time.monotonic() > deadline:
                log.error("media process %d still has calls; ending them", self.index + 1)
                self.proc.send_signal(STEP_SIGNAL)  # its second: calls end, messages kept
                return
            await asyncio.sleep(0.2)

    async def finish(self) -> None:
        """Stop the process (closing its control socket tells it to); kill it if it hangs."""
        self._stopping = True
        self._close_control()
        proc = self.proc
        if proc is None:
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), FINISH_SECONDS)
        except TimeoutError:
            log.error("media process %d did not stop; killing it", self.index + 1)
            proc.kill()
            await asyncio.to_thread(proc.wait)


class MediaWorkers:
    """A node's media processes as one: their numbers, their callbacks, their drain, their stop."""

    def __init__(self, processes: list[MediaProcess]) -> None:
        self.processes = processes
        self.draining = False
        self._next = 0  # the process the next callback is offered to first

    async def place(self, plan: CallbackPlan) -> None:
        """Place a callback on one of the processes, taking turns; a process that is full or
        does not answer passes it to the next. CallbackRefused when none takes it."""
        if self.draining:
            raise CallbackRefused("this node is stopping and places no new calls; retry elsewhere")
        count = len(self.processes)
        reason = "no media process answered"
        for i in range(count):
            process = self.processes[(self._next + i) % count]
            refused = await process.place_callback(plan)
            if refused == "":
                self._next = (self._next + i + 1) % count
                return
            if refused is not None:
                reason = refused
        raise CallbackRefused(reason)

    async def numbers(self) -> list[MediaNumbers | None]:
        """Each process's numbers, in order (None where one did not answer)."""
        return list(await asyncio.gather(*(p.numbers() for p in self.processes)))

    def drain(self) -> None:
        """Every process drains (new calls 503, calls go on); called again, ends their calls."""
        self.draining = True
        for process in self.processes:
            process.drain()

    async def stop(self) -> None:
        """Drain every process unless told already; when none has a call left, stop them all
        (each keeps answering 503 until then, so a balancer never finds a port closed)."""
        if not self.draining:
            self.drain()
        limit = max((p.settings.drain_seconds for p in self.processes), default=0) + 15
        await asyncio.gather(*(p.drained(limit) for p in self.processes))
        await asyncio.gather(*(p.finish() for p in self.processes))


async def start_media_processes(_app: FastAPI, ctx: ServerContext, stack: AsyncExitStack) -> None:
    """Start the node's media processes (after migrations ran); stop them when it stops."""
    settings = ctx.settings
    if settings.workers <= 0 or settings.sip_port == 0:
        return
    spawner = Spawner()
    stack.callback(spawner.close)  # after the processes stopped
    processes = [MediaProcess(settings, i, spawner) for i in range(settings.workers)]
    workers = MediaWorkers(processes)
    stack.push_async_callback(workers.stop)
    started = time.monotonic()
    await asyncio.gather(*(p.start() for p in processes))
    ctx.media_workers = workers
    ctx.callbacks = workers  # callbacks are placed by the media processes, in turn
    # The API yields the CPU to them, all of it but the thread that starts them (Spawner).
    priority = yield_cpu(keep=(spawner.thread_id,))
    log.info("API process at CPU priority %s", priority or "unchanged")
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
