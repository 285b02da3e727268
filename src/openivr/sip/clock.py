"""The one clock that paces every call's RTP, and the event loop's lag it measures.

A timer per call would cost far more: one ticker on absolute 20 ms deadlines sends a packet for
every active session each tick (no drift; a stalled loop skips ticks and says so), and how late
each tick starts is what every call's audio is delayed by.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import select
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from openivr import loopwatch

if TYPE_CHECKING:
    from openivr.sip.media import RtpSession

log = logging.getLogger(__name__)

PTIME = 0.020

# Upper bounds (seconds) of the tick-lateness histogram; the last bucket takes the rest.
LAG_BOUNDS = (0.001, 0.002, 0.005, 0.010, 0.020, 0.050, 0.100)
# A tick this late is a stall every call hears (half a packet): warned about, naming what ran.
LATE_TICK = 0.010
# At most one such warning per this many seconds (the rest are counted in the next one), and
# a summary line of the lateness this often while calls are up.
_WARN_EVERY = 1.0
_SUMMARY_EVERY = 60.0
# Objects older than this are frozen out of the garbage collector's way (see `age_heap`).
HEAP_AGE = 10.0
# Read rounds per tick for paced sessions: a socket holding more packets than this (a loop
# stalled for that many ticks) is caught up over the next ticks.
_POLL_ROUNDS = 8


class MediaClock:
    """One timer that serves every call: each tick, every active session sends one packet.

    Ticks are scheduled at absolute deadlines (start + n * ptime) so lateness of one tick
    never accumulates; if the loop stalls for more than a tick, the missed ticks are skipped
    and sessions advance their RTP timestamps by the tick count, not by packets sent.

    The clock is also the loop's lag monitor: how late each tick starts after its deadline (or
    after one period from the start of a tick that ran so long the clock skipped) is what
    every call's audio is delayed by. Plain counters (`lag_*`, `late_ticks`,
    `skipped_ticks`) are kept for metrics; a tick later than 10 ms logs a warning naming what
    was on the loop meanwhile (API requests, GC pauses; in asyncio debug mode the loop itself
    also names the slow callback), and a summary line is logged every minute while calls run.
    """

    def __init__(self, ptime: float = PTIME, warn_every: float = _WARN_EVERY) -> None:
        self.ptime = ptime
        self.warn_every = warn_every
        self._sessions: set[RtpSession] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._start = 0.0
        # When the next tick is due as callers hear it (its lateness is measured from there),
        # and how long the last tick's own work took.
        self._deadline = 0.0
        self._worked = 0.0
        self.tick_count = 0
        self.skipped_ticks = 0
        # Lag monitor: ticks measured, their lateness summed and binned (cumulative counts
        # per LAG_BOUNDS, the last one all of them), the worst, and those over LATE_TICK.
        self.lag_count = 0
        self.lag_sum = 0.0
        self.lag_max = 0.0
        self.lag_buckets = [0] * (len(LAG_BOUNDS) + 1)
        self.late_ticks = 0
        self._warned_at = -warn_every
        self._unwarned = 0
        self._summary_at = 0.0
        self._summary_base: tuple[int, float, int, int] = (0, 0.0, 0, 0)
        self._summary_max = 0.0
        # Paced sessions' sockets are read in the tick, from one epoll set, rather than each
        # waking the loop per packet (see tick's docstring); created with the first session.
        self._poller: select.epoll | None = None
        self._polled: dict[int, RtpSession] = {}
        self._readers: dict[int, Callable[[], None]] = {}  # fd -> its session's read_now
        # The heap's ageing (age_heap): a freeze is due after the next tick's sends; the timer
        # that makes the next one due; whether nothing was frozen since the last sweep.
        self._freeze_due = False
        self._heap_timer: asyncio.TimerHandle | None = None
        self._swept = True
        self.heap_freezes = 0
        self.heap_sweeps = 0

    def add(self, session: RtpSession) -> None:
        """Start pacing a session (starts the clock if idle); its socket is read in the tick."""
        self._sessions.add(session)
        session.attach(self.tick_count)
        fd = session.take_reading()
        if fd is not None and hasattr(select, "epoll"):
            if self._poller is None:
                self._poller = select.epoll()
            try:
                self._poller.register(fd, select.EPOLLIN)
            except FileExistsError:  # a closed socket's number, reused: epoll forgot it
                self._poller.modify(fd, select.EPOLLIN)
            self._polled[fd] = session
            self._readers[fd] = session.read_now
        elif fd is not None:
            session.give_reading()
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._start = loop.time() - self.tick_count * self.ptime
            self._deadline = loop.time()
            self._handle = loop.call_at(self._deadline, self._tick)

    def remove(self, session: RtpSession) -> None:
        """Stop pacing a session (the clock stops when none is left); the loop reads it again."""
        self._sessions.discard(session)
        for fd, polled in list(self._polled.items()):
            if polled is session:
                del self._polled[fd]
                del self._readers[fd]
                if self._poller is not None:
                    try:
                        self._poller.unregister(fd)
                    except (OSError, ValueError):  # closed already: epoll dropped it
                        pass
                session.give_reading()
        if not self._sessions and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def age_heap(self, every: float | None = None) -> Callable[[], None]:
        """From now on what has lived `every` seconds leaves the garbage collector's way: the
        clock freezes it (`gc.freeze`, just after a tick's packets went out), so Python's full
        collections walk only younger objects. When no call is up, everything is unfrozen and
        collected once (nobody hears it then) and frozen again. Returns the function that stops
        this.

        A full pass walks every object not frozen: with the calls' ~150 objects each, ~100 ms at
        1,000 calls and 30-260 ms at 300 on this machine, a stall every call hears; Python starts
        one whenever a quarter more objects survived since the last, every few seconds while
        calls arrive. A frozen object is still freed by refcounting the moment it is no longer
        used; only one in a reference cycle waits for the next sweep, and an ended call leaves
        none (tests/calls/test_call_memory.py).
        """
        loop = asyncio.get_running_loop()
        age = HEAP_AGE if every is None else every

        def due() -> None:
            if self._handle is None:  # no call is up: sweep now, nobody hears it
                self._sweep()
            else:
                self._freeze_due = True
            self._heap_timer = loop.call_later(age, due)

        self._heap_timer = loop.call_later(age, due)

        def stop() -> None:
            if self._heap_timer is not None:
                self._heap_timer.cancel()
                self._heap_timer = None
            self._freeze_due = False

        return stop

    def _freeze(self) -> None:
        self._freeze_due = False
        self.heap_freezes += 1
        self._swept = False
        gc.freeze()

    def _sweep(self) -> None:
        if self._swept:  # nothing was frozen since the last sweep
            return
        self._swept = True
        self.heap_sweeps += 1
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    @property
    def session_count(self) -> int:
        """How many sessions are paced now."""
        return len(self._sessions)

    def lag_percentile(self, fraction: float) -> float:
        """An upper bound (seconds) of the given fraction of ticks' lateness, from the bins."""
        if not self.lag_count:
            return 0.0
        want = fraction * self.lag_count
        for bound, count in zip(LAG_BOUNDS, self.lag_buckets, strict=False):
            if count >= want:
                return bound
        return self.lag_max

    def _receive(self) -> None:
        # Reading every paced socket here, from one epoll set, instead of a loop callback per
        # packet: at 1,000 talking calls the loop was woken ~50,000 times a second, each wake
        # costing an epoll_wait and a callback dispatch; now it is two epoll_waits per tick.
        # Packets wait up to one tick (20 ms) in their socket, which a menu or a recording does
        # not notice; bridged sessions are off the clock and still read the moment they arrive.
        poller = self._poller
        if poller is None or not self._polled:
            return
        readers = self._readers
        # Each round reads one packet from every socket that has one; the next round's poll
        # finds only those that hold more (a burst, or a loop that was busy). No read ever
        # fails with EAGAIN this way, which a drain-until-empty pays for on every socket.
        for _round in range(_POLL_ROUNDS):
            events = poller.poll(0)
            if not events:
                return
            for fd, _mask in events:
                read = readers.get(fd)
                if read is not None:
                    read()

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now, began = time.monotonic(), loop.time()
        self._note_lag(began - self._deadline, now)
        # Sends first, on time; then what arrived. Reading first put the sends after however
        # long the reading took, which varies from tick to tick (in-band detection is ~25 µs a
        # packet): 150 in-band callers' sends were up to 48 ms apart with ticks at most 19 ms late.
        for session in list(self._sessions):
            try:
                session.tick(self.tick_count, now)
            except Exception:  # one broken call must not stop the others' audio
                log.exception("RTP tick failed for session on port %s", session.local_port)
        try:
            self._receive()
        except Exception:  # never stop every call's audio over one bad read
            log.exception("reading paced RTP sockets failed")
        if self._freeze_due:
            self._freeze()
        self.tick_count += 1
        deadline = self._start + self.tick_count * self.ptime
        ended = loop.time()
        behind = ended - deadline
        if behind > self.ptime:
            skip = int(behind / self.ptime)
            self.skipped_ticks += skip
            self.tick_count += skip
            deadline = self._start + self.tick_count * self.ptime
        # Callers hear the next tick late from one period after this one began, whatever the
        # skip made its deadline: a tick whose own sends stalled 45 ms (the process preempted,
        # another thread holding the GIL) had the next one skipped and scheduled at once, which
        # measured from the new deadline was on time, yet its calls heard packets 60 ms apart.
        self._deadline = min(deadline, began + self.ptime)
        self._worked = ended - began
        self._handle = loop.call_at(deadline, self._tick)

    def _note_lag(self, lag: float, now: float) -> None:
        lag = max(0.0, lag)
        self.lag_count += 1
        self.lag_sum += lag
        if lag > self.lag_max:
            self.lag_max = lag
        if lag > self._summary_max:
            self._summary_max = lag
        buckets = self.lag_buckets
        for i, bound in enumerate(LAG_BOUNDS):
            if lag <= bound:
                for j in range(i, len(buckets)):
                    buckets[j] += 1
                break
        else:
            buckets[-1] += 1
        if lag > LATE_TICK:
            self.late_ticks += 1
            if now - self._warned_at >= self.warn_every:
                also = f" ({self._unwarned} more late ticks since the last warning)"
                worked = self._worked
                log.warning(
                    "media clock tick %.1f ms late, %d calls' audio delayed; on the loop "
                    "meanwhile: %s%s%s",
                    lag * 1000,
                    len(self._sessions),
                    loopwatch.activity.during(now - lag - self.ptime),
                    f"; the tick before ran {worked * 1000:.0f} ms itself"
                    if worked > LATE_TICK
                    else "",
                    also if self._unwarned else "",
                )
                self._warned_at, self._unwarned = now, 0
            else:
                self._unwarned += 1
        if now - self._summary_at >= _SUMMARY_EVERY:
            self._log_summary(now)

    def _log_summary(self, now: float) -> None:
        count, total, late, skipped = self._summary_base
        ticks = self.lag_count - count
        if self._summary_at and ticks:
            log.info(
                "media clock: %d ticks, %d calls, lateness mean %.2f ms, max %.1f ms, "
                "%d over %.0f ms, %d skipped",
                ticks,
                len(self._sessions),
                (self.lag_sum - total) / ticks * 1000,
                self._summary_max * 1000,
                self.late_ticks - late,
                LATE_TICK * 1000,
                self.skipped_ticks - skipped,
            )
        self._summary_at = now
        self._summary_base = (self.lag_count, self.lag_sum, self.late_ticks, self.skipped_ticks)
        self._summary_max = 0.0
