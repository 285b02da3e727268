"""Bench: what one call's setup and teardown cost a node's media process (issue #15).

Run by hand, through the CPU lock, not pinned:

    /work/testlock.sh .venv/bin/python bench/sip/call_setup.py --calls 600 --rate 60 --hold 0.5

A node's media side (`MEDIA_LAYERS` as `openivr serve --workers 1` runs its media process: SIP,
RTP, calls; SQLite unless `--database-url`) runs in this process on uvloop. SIPp calls a phone
number connected to the account's Main menu at `--rate` calls/s, stays `--hold` s without
sending audio and hangs up; the node answers, plays the welcome and ends the call when the BYE
comes. Reported per run (one line of key=value):

- cpu_us_per_call: this process's CPU time (every thread: the loop, aiosqlite's) over the run,
  less what the idle node took over the same time (measured before), per call; of it (idle
  not taken off) loop_us_per_call on the node's loop and other_threads_us_per_call in every
  other thread (the database driver's, threads that ended count nowhere); of the loop's,
  loop_sip_receive_us in `SipServer.receive` (each SIP message parsed, handled, answered) and
  loop_media_ticks_us in the media clock's ticks (the prompt's RTP while the call is up);
- per call: db_round_trips (on SQLite: hops to aiosqlite's thread, for statements, fetches,
  begins, commits and rollbacks; not counted on PostgreSQL), sql (statements executed through the engine), fresh_reads
  (store/fresh.py's reads: inline on SQLite), sessions (ORM sessions opened),
  db_connects (database connections opened), tasks (asyncio tasks created), sip_parsed (SIP
  messages parsed);
- records: the calls' records in the database, completed (sanity: every call counted).

`--cprofile out.pstats` profiles the node's loop thread with cProfile (slower: its CPU
numbers mean nothing then). `--profile out.svg` runs py-spy on this process for the measured run (`out.txt`: collapsed
stacks, one line per stack with its count of samples).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosqlite
from fastapi import FastAPI
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.context import ServerContext
from openivr.sip import server as sip_server
from openivr.sip.clock import MediaClock
from openivr.store.accounts import create_account
from openivr.store.db import open_database
from openivr.store.models import CallRecord, PhoneNumber, VoiceApp

sys.path.insert(0, str(Path(__file__).parent))
from ivr_calls import Node, free_port  # noqa: E402
from talking import sipp_command  # noqa: E402

HERE = Path(__file__).parent
NUMBER = "+46850001234"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds of each thread of this process by id, with its name; Linux only."""
    found: dict[int, tuple[str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        found[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return found


class Counts:
    """What the node did, counted where it happens."""

    def __init__(self) -> None:
        self.round_trips = 0
        self.sql = 0
        self.tasks = 0
        self.parsed = 0
        self.sessions = 0
        self.connects = 0
        self.fresh = 0
        self.sip_s = 0.0  # the loop's CPU in SipServer.receive (parse, handle, answer)
        self.tick_s = 0.0  # the loop's CPU in the media clock's ticks

    def snapshot(self) -> dict[str, int]:
        return dict(vars(self))


def media_node(data_dir: Path, database_url: str, counts: Counts) -> Node:
    """A node's media process (SIP, RTP, calls) on uvloop in a thread of this process, its
    tasks, statements and connections counted."""

    async def count(_app: FastAPI, ctx: ServerContext, _stack: Any) -> None:
        loop = asyncio.get_running_loop()
        factory = loop.get_task_factory()

        def counted(lp: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> Any:
            counts.tasks += 1
            if factory is not None:
                return factory(lp, coro, **kw)
            return asyncio.Task(coro, loop=lp, **kw)

        loop.set_task_factory(counted)  # type: ignore[arg-type]

        @event.listens_for(ctx.engine.sync_engine, "before_cursor_execute")
        def _sql(*_a: Any) -> None:
            counts.sql += 1

        @event.listens_for(ctx.engine.sync_engine, "connect")
        def _connect(*_a: Any) -> None:
            counts.connects += 1

    return Node(data_dir, database_url, api=False, layers=(count,))


def instrument(counts: Counts) -> None:
    """Count database hops, SIP parses and ORM sessions in this process."""
    execute = aiosqlite.Connection._execute

    async def hop(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        counts.round_trips += 1
        return await execute(self, fn, *args, **kwargs)

    aiosqlite.Connection._execute = hop  # type: ignore[method-assign]
    parse = sip_server.parse_message

    def parsed(data: bytes, stream: bool = False) -> Any:
        counts.parsed += 1
        return parse(data, stream=stream)

    sip_server.parse_message = parsed  # type: ignore[assignment]
    receive = sip_server.SipServer.receive

    def timed_receive(self: Any, *args: Any) -> None:
        t = time.thread_time()
        try:
            receive(self, *args)
        finally:
            counts.sip_s += time.thread_time() - t

    sip_server.SipServer.receive = timed_receive  # type: ignore[method-assign]
    tick = MediaClock._tick

    def timed_tick(self: Any) -> None:
        t = time.thread_time()
        try:
            tick(self)
        finally:
            counts.tick_s += time.thread_time() - t

    MediaClock._tick = timed_tick  # type: ignore[method-assign]
    init = AsyncSession.__init__

    def session(self: Any, *args: Any, **kwargs: Any) -> None:
        counts.sessions += 1
        init(self, *args, **kwargs)

    AsyncSession.__init__ = session  # type: ignore[method-assign]
    try:
        from openivr.store.fresh import FreshReader
    except ImportError:  # code from before fresh reads
        return
    first = FreshReader.first

    async def fresh(self: Any, sql: str, params: Any) -> Any:
        counts.fresh += 1
        return await first(self, sql, params)

    FreshReader.first = fresh  # type: ignore[method-assign]


async def prepare(database_url: str) -> str:
    """An account whose number reaches its Main menu; the account id."""
    async with open_database(database_url) as (_engine, sessions):
        email = f"setup-{secrets.token_hex(3)}@example.com"
        created = await create_account(sessions, email, "bench-pass")
        async with sessions() as db, db.begin():
            menu = (
                await db.scalars(
                    select(VoiceApp).where(
                        VoiceApp.account_id == created.account_id, VoiceApp.app_type == "ivr"
                    )
                )
            ).one()
            await db.merge(
                PhoneNumber(
                    phnum=NUMBER,
                    account_id=created.account_id,
                    connect_to_type="app",
                    connect_to={"app_id": menu.app_id},
                )
            )
        return created.account_id


async def completed(database_url: str, account_id: str) -> int:
    async with open_database(database_url) as (_engine, sessions), sessions() as db:
        n = await db.scalar(
            select(func.count())
            .select_from(CallRecord)
            .where(CallRecord.account_id == account_id, CallRecord.outcome != "in_progress")
        )
        return int(n or 0)


def place(node: Node, tmp: Path, calls: int, rate: float, hold: float) -> int:
    """SIPp places `calls` calls at `rate`/s; its exit status."""
    xml = tmp / "short_call.xml"
    text = (HERE / "short_call.xml").read_text().replace("[hold_ms]", str(int(hold * 1000)))
    xml.write_text(text)
    sipp = subprocess.run(
        sipp_command(
            f"127.0.0.1:{node.settings.sip_port}",
            xml,
            NUMBER.lstrip("+"),
            calls=calls,
            limit=max(10, int(rate * (hold + 2))),
            rate=rate,
            ports=(free_port(), free_port()),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp,
        check=False,
    )
    return sipp.returncode


async def _call(fn: Any) -> None:
    fn()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--rate", type=float, default=60.0)
    parser.add_argument("--hold", type=float, default=0.5)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--profile", default="", help="py-spy flame graph of the measured run")
    parser.add_argument("--cprofile", default="", help="cProfile stats of the loop's thread")
    args = parser.parse_args()
    counts = Counts()
    instrument(counts)
    with tempfile.TemporaryDirectory(prefix="openivr-setup-") as tmpname:
        tmp = Path(tmpname)
        node = media_node(tmp / "data", args.database_url, counts)
        url = node.settings.effective_database_url
        try:
            account_id = asyncio.run(prepare(url))
            place(node, tmp, args.warmup, min(args.rate, 20.0), args.hold)
            time.sleep(1.0)  # the warm-up's records written
            idle_from, idle_cpu = time.monotonic(), cpu()
            time.sleep(2.0)
            idle_rate = (cpu() - idle_cpu) / (time.monotonic() - idle_from)
            spy = None
            if args.profile:
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).with_name("py-spy")),
                        "record",
                        "-o",
                        args.profile,
                        "-p",
                        str(os.getpid()),
                        "-r",
                        "200",
                        "--threads",
                        "--nonblocking",
                        "--gil",
                        *(["--format", "raw"] if args.profile.endswith(".txt") else []),
                    ],  # fmt: skip
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)
            # CPU time of the thread, not wall time: on a busy machine a preempted send looked slow.
            profiler = cProfile.Profile(time.thread_time) if args.cprofile else None
            if profiler is not None:
                node.run(_call(profiler.enable))
            before = counts.snapshot()
            threads_before = thread_cpu()
            start, start_cpu = time.monotonic(), cpu()
            rc = place(node, tmp, args.calls, args.rate, args.hold)
            time.sleep(0.5)  # the last records' batch
            took, used = time.monotonic() - start, cpu() - start_cpu
            after = counts.snapshot()
            if profiler is not None:
                node.run(_call(profiler.disable))
                profiler.dump_stats(args.cprofile)
            threads_after = thread_cpu()
            if spy is not None:
                spy.send_signal(2)
                spy.wait(60)
            done = asyncio.run(completed(url, account_id)) - args.warmup
        finally:
            node.stop()
    n = args.calls
    result: dict[str, Any] = {
        "calls": n,
        "rate": args.rate,
        "hold": args.hold,
        "sipp_rc": rc,
        "records": done,
        "cpu_us_per_call": round((used - idle_rate * took) / n * 1e6),
        "idle_cpu_pct": round(idle_rate * 100, 1),
        "run_cpu_pct": round(used / took * 100, 1),
        "db_round_trips": round((after["round_trips"] - before["round_trips"]) / n, 2)
        if "sqlite" in url
        else "n/a",
        "sql": round((after["sql"] - before["sql"]) / n, 2),
        "fresh_reads": round((after["fresh"] - before["fresh"]) / n, 2),
        "sessions": round((after["sessions"] - before["sessions"]) / n, 2),
        "db_connects": round((after["connects"] - before["connects"]) / n, 2),
        "tasks": round((after["tasks"] - before["tasks"]) / n, 2),
        "sip_parsed": round((after["parsed"] - before["parsed"]) / n, 2),
    }
    loop_id = node.thread.native_id
    by_thread = {"loop": 0.0, "others": 0.0}
    for tid, (_name, used_by) in threads_after.items():
        spent = used_by - threads_before.get(tid, ("", 0.0))[1]
        by_thread["loop" if tid == loop_id else "others"] += spent
    result["loop_us_per_call"] = round(by_thread["loop"] / n * 1e6)
    result["loop_sip_receive_us"] = round((after["sip_s"] - before["sip_s"]) / n * 1e6)
    result["loop_media_ticks_us"] = round((after["tick_s"] - before["tick_s"]) / n * 1e6)
    result["other_threads_us_per_call"] = round(by_thread["others"] / n * 1e6)
    print(" ".join(f"{k}={v}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
