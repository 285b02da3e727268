"""Where in a call the talking-caller bench's worst send intervals fall (`ivr_calls.py --where`).

Kept out of the node's code: `install` wraps, in the bench process only, a session's send
bookkeeping (the time of its first packet), its `play` (when each prompt started and how long
it is) and the media clock's tick (how long each tick's own work took and whether the clock
skipped ticks after it; for a long one, how much of it the loop's thread spent on the CPU and
how often it was preempted or waited, which tells the tick's own work from the process being
preempted or another of its threads holding the GIL). `worst` then places each of the longest
intervals in its call: seconds after the call's first packet (the answer), what it was sending
(which prompt, how far in, or silence) and what the clock did meanwhile.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from openivr.sip.clock import MediaClock
from openivr.sip.media import RtpSession, RtpStats

# Ticks whose own work took at least this long, or after which ticks were skipped, are noted.
LONG_TICK = 0.005
# (start, seconds of work, ticks skipped after it, CPU seconds of the loop's thread in it,
# involuntary and voluntary context switches of that thread in it)
ticks: list[tuple[float, float, int, float, int, int]] = []


def install() -> None:
    """Wrap the send bookkeeping, `play` and the clock's tick (bench process only)."""
    note_send = RtpSession._note_send

    def first_send(stats: RtpStats) -> None:
        if stats._last_send is None:
            stats.first_send = time.monotonic()  # type: ignore[attr-defined]
        note_send(stats)

    RtpSession._note_send = staticmethod(first_send)  # type: ignore[method-assign]
    play = RtpSession.play

    def playing(self: RtpSession, frames: Sequence[bytes], on_done: Any) -> None:
        plays = self.__dict__.setdefault("bench_plays", [])
        plays.append((time.monotonic(), len(frames)))
        play(self, frames, on_done)

    RtpSession.play = playing  # type: ignore[method-assign]
    tick = MediaClock._tick

    def timed(self: MediaClock) -> None:
        usage, cpu = resource.getrusage(resource.RUSAGE_THREAD), time.thread_time()
        started, skipped = time.monotonic(), self.skipped_ticks
        tick(self)
        work = time.monotonic() - started
        if work >= LONG_TICK or self.skipped_ticks != skipped:
            after = resource.getrusage(resource.RUSAGE_THREAD)
            ticks.append(
                (
                    started,
                    work,
                    self.skipped_ticks - skipped,
                    time.thread_time() - cpu,
                    after.ru_nivcsw - usage.ru_nivcsw,
                    after.ru_nvcsw - usage.ru_nvcsw,
                )
            )

    MediaClock._tick = timed  # type: ignore[method-assign]


def _sending(session: RtpSession, at: float) -> str:
    plays = [p for p in session.__dict__.get("bench_plays", []) if p[0] <= at]
    if not plays:
        return "silence before the first prompt"
    started, frames = plays[-1]
    into = at - started
    if into > frames * 0.020:
        return f"silence after a {frames * 0.020:.1f} s prompt (prompt {len(plays)})"
    return f"prompt {len(plays)} ({frames * 0.020:.1f} s), {into:.2f} s into it"


def worst(calls: list[Any], count: int = 6) -> list[dict[str, Any]]:
    """The `count` worst moments of these calls: each call's intervals over 25 ms, grouped by
    the moment they ended (within 10 ms: one tick), longest first; each says how many calls it
    hit (all of them: the clock or the process stalled; one: that session skipped a send),
    where it fell in one of those calls and what the clock did meanwhile."""
    found: list[tuple[float, Any, float]] = []  # (interval, call, send time that ended it)
    for call in calls:
        stats = call.stats
        first = getattr(stats, "first_send", None)
        intervals = np.asarray(stats.send_intervals)
        if first is None or intervals.size == 0 or intervals.size != stats.packets_sent - 1:
            continue  # trimmed (a call over two minutes) or not sent yet: no time base
        sent = first + np.cumsum(intervals)
        for i in np.flatnonzero(intervals > 0.025):
            found.append((float(intervals[i]), call, float(sent[i])))
    found.sort(key=lambda f: f[2])
    moments: list[list[tuple[float, Any, float]]] = []
    for item in found:
        if moments and item[2] - moments[-1][0][2] <= 0.010:
            moments[-1].append(item)
        else:
            moments.append([item])
    moments.sort(key=lambda m: -max(i[0] for i in m))
    out = []
    for moment in moments[:count]:
        interval, call, at = max(moment, key=lambda i: i[0])
        first = call.stats.first_send
        near = [
            f"tick at {t - first:.3f} s: {work * 1000:.1f} ms ({cpu * 1000:.1f} ms on the CPU, "
            f"preempted {preempted}x, waited {waited}x), {skipped} skipped after"
            for t, work, skipped, cpu, preempted, waited in ticks
            if at - interval - 0.025 <= t <= at
        ]
        out.append(
            {
                "ms": round(interval * 1000, 1),
                "calls_hit": len({id(i[1]) for i in moment}),
                "after_answer_s": round(at - first, 3),
                "sending": _sending(call.rtp_session, at - interval),
                "clock": near or "no long or skipping tick",
            }
        )
    return out


def tick_summary(since: float) -> dict[str, float]:
    """The ticks noted since `since`: how many, the longest work, the skips after them."""
    mine = [t for t in ticks if t[0] >= since]
    longest = max(mine, key=lambda t: t[1], default=None)
    return {
        "long_ticks": float(sum(1 for t in mine if t[1] >= LONG_TICK)),
        "tick_work_max_ms": round(longest[1] * 1000, 2) if longest else 0.0,
        "tick_work_max_cpu_ms": round(longest[3] * 1000, 2) if longest else 0.0,
        "skips_after_long_ticks": float(sum(t[2] for t in mine)),
    }
