"""Floods: new requests per second per source address, limited by a token bucket per node.

A scanner sends OPTIONS, REGISTER and INVITE by the thousand; parsing and answering each costs
the loop that paces every call's audio. The gate sits before parsing: a request over its
source's rate is dropped unanswered (an answer would cost as much as the flood and tell the
scanner someone is here), costing a dictionary look-up and a little arithmetic. Addresses on
`--trusted-networks` (a balancer, a trunk) are never limited: they carry many callers.

Per node and in memory: a flood is a matter of this node's CPU, and a shared counter would cost
a database round trip per packet, the very thing a flood must not cause.
"""

from __future__ import annotations

import functools
import time

from openivr.guard.addresses import Networks, counted_source

# Buckets kept at most; beyond it, those that have refilled (idle sources) are forgotten.
MAX_SOURCES = 20_000


@functools.lru_cache(maxsize=4096)
def _ipv6_key(address: str) -> str:
    return counted_source(address)


class FloodGate:
    """A token bucket per source address: `rate` requests a second, bursts of `burst`."""

    def __init__(self, rate: float, burst: float, trusted: Networks | None = None) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("sip_rate_limit must be more than 0 and sip_rate_burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.trusted = trusted or Networks()
        # source -> [tokens, when they were counted (monotonic seconds)]
        self._buckets: dict[str, list[float]] = {}
        self.dropped = 0

    def allow(self, address: str) -> bool:
        """Whether one more request from `address` may be handled now."""
        if ":" in address:  # an IPv6 host holds a /64
            address = _ipv6_key(address)
        bucket = self._buckets.get(address)
        now = time.monotonic()
        if bucket is None:
            if address in self.trusted:
                return True
            if len(self._buckets) >= MAX_SOURCES:
                self._forget_idle(now)
            self._buckets[address] = [self.burst - 1.0, now]
            return True
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return True
        bucket[0] = tokens
        self.dropped += 1
        return False

    def _forget_idle(self, now: float) -> None:
        full = self.burst / self.rate
        for key in [k for k, (_t, at) in self._buckets.items() if now - at >= full]:
            del self._buckets[key]
        if len(self._buckets) >= MAX_SOURCES:
            self._buckets.clear()  # spoofed sources by the thousand: start over
