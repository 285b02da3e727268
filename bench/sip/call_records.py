"""What writing call records costs the event loop: a batch of calls starting, then ending.

Run: .venv/bin/python bench/sip/call_records.py [--calls 100 1000] [--database-url URL]

Each call's row is written when it starts (outcome in_progress) and completed when it ends
(calls/records.py, batched every 0.2 s). This drives `CallLog` as the SIP server does, for N
calls starting together and then ending together, and reports the time of each batch's write
(the 0.2 s batching wait left out), best of 3 rounds. The loop waits for the database meanwhile,
so on SQLite most of it is time the media clock cannot run. Default: a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import tempfile
import time
from datetime import UTC, datetime

from openivr.calls.records import FLUSH_DELAY, CallLog
from openivr.sip.call import SipCallRecord
from openivr.store.db import open_database


def _ended(call_id: str, now: datetime) -> SipCallRecord:
    values = {
        "call_id": call_id,
        "caller": "+46701234567",
        "dialed": "VAbench00001",
        "started_at": now,
        "answered_at": now,
        "ended_at": now,
        "ended_by": "caller",
        "status": 200,
        "reason": "bye",
    }
    names = {f.name for f in dataclasses.fields(SipCallRecord)}
    return SipCallRecord(**{k: v for k, v in values.items() if k in names})


async def _round(log: CallLog, calls: int, tag: str) -> tuple[float, float]:
    ids = [f"{tag}-{i}" for i in range(calls)]
    t0 = time.perf_counter()
    for call_id in ids:
        log.call_started(call_id, "+46701234567", "VAbench00001", "412345678", "VAbench00001")
    await log.drain()
    t1 = time.perf_counter()
    now = datetime.now(UTC)
    for call_id in ids:
        log.call_ended(_ended(call_id, now))
    await log.drain()
    t2 = time.perf_counter()
    return t1 - t0 - FLUSH_DELAY, t2 - t1 - FLUSH_DELAY


async def main(calls: list[int], url: str) -> None:
    """Print the start and end batch times per level."""
    logging.disable(logging.INFO)  # the per-call log lines are not what is measured
    if not url:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/records.db"
    async with open_database(url) as (_engine, sessions):
        log = CallLog(sessions, "bench")
        for n in calls:
            rounds = [await _round(log, n, f"r{r}-{n}") for r in range(3)]
            starts = min(r[0] for r in rounds) * 1000
            ends = min(r[1] for r in rounds) * 1000
            print(f"{n:>5} calls: starts {starts:7.1f} ms, ends {ends:7.1f} ms per batch")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.database_url))
