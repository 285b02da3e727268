"""What an operator watches: this node's numbers in Prometheus' text format (`GET /metrics`).

Most numbers are counters the layers keep anyway (the media clock's lag, the SIP server's calls,
the security log's events), read only when Prometheus scrapes, so a call or a request pays
nothing for them. What is counted here on the hot path is one histogram observation per API
request (labelled by route template, method and status: a bounded set, never raw paths) and
one counter per call that ends. Voicemail deliveries and registrations are read from the
database at scrape time; they are the cluster's (every node shares the database), the rest
are this node's. With media processes (`--workers N`) the node's calls and media are theirs:
the API process asks each for its `MediaNumbers` at scrape time and reports the sum.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openivr import __version__, security
from openivr.sip.clock import LAG_BOUNDS

if TYPE_CHECKING:
    from openivr.context import ServerContext
    from openivr.store.models import CallRecord

_LABEL = re.compile(r"^[a-z_]{1,32}$")
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# Why calls are refused, by the SIP server's own reasons and the router's statuses.
_REJECT_REASONS = {
    404: "not_found",
    480: "unavailable",
    486: "busy",
    488: "no_common_codec",
    415: "unsupported_media",
    403: "forbidden",
    500: "error",
}


def reject_reason(status: int, reason: str) -> str:
    """A bounded label for why a call was refused."""
    if reason in ("draining", "max_calls"):
        return reason
    return _REJECT_REASONS.get(status, "other")


@dataclass
class MediaNumbers:
    """What a media side counts (calls, the media clock, SIP), summable over a node's media
    processes and sent between them as JSON."""

    calls_up: int = 0
    lag_buckets: list[int] = field(default_factory=lambda: [0] * len(LAG_BOUNDS))
    lag_count: int = 0
    lag_sum: float = 0.0
    late_ticks: int = 0
    skipped_ticks: int = 0
    rtp_send_errors: int = 0
    flood_dropped: int = 0
    # Calls that ended, by outcome; refused ones by reason; security events by kind|channel|reason.
    calls: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    security: dict[str, int] = field(default_factory=dict)
    listening: bool = False
    draining: bool = False

    def add(self, other: MediaNumbers) -> None:
        """Add another process's numbers to these."""
        self.calls_up += other.calls_up
        self.lag_buckets = [a + b for a, b in zip(self.lag_buckets, other.lag_buckets, strict=True)]
        self.lag_count += other.lag_count
        self.lag_sum += other.lag_sum
        self.late_ticks += other.late_ticks
        self.skipped_ticks += other.skipped_ticks
        self.rtp_send_errors += other.rtp_send_errors
        self.flood_dropped += other.flood_dropped
        for mine, theirs in (
            (self.calls, other.calls),
            (self.rejected, other.rejected),
            (self.security, other.security),
        ):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> MediaNumbers:
        """The numbers `to_json` wrote (ValueError when they are not)."""
        data = json.loads(text)
        numbers = cls(**data)
        if len(numbers.lag_buckets) != len(LAG_BOUNDS):
            raise ValueError("lag buckets do not match")
        return numbers


def media_numbers(ctx: ServerContext) -> MediaNumbers:
    """This process's own media numbers (nothing but its security events without SIP)."""
    metrics = ctx.metrics
    numbers = MediaNumbers(
        calls=dict(metrics.call_outcomes),
        rejected=dict(metrics.rejections),
        security={"|".join(key): count for key, count in ctx.security.counts.items()},
    )
    sip = ctx.sip_server
    if sip is None:
        return numbers
    clock = sip.clock
    numbers.calls_up = sip.active_calls
    numbers.lag_buckets = list(clock.lag_buckets[: len(LAG_BOUNDS)])
    numbers.lag_count = clock.lag_count
    numbers.lag_sum = clock.lag_sum
    numbers.late_ticks = clock.late_ticks
    numbers.skipped_ticks = clock.skipped_ticks
    numbers.rtp_send_errors = sip.rtp_send_errors + sum(
        call.rtp_session.stats.send_errors for call in list(sip.calls.values())
    )
    numbers.flood_dropped = sip.flood.dropped if sip.flood is not None else 0
    numbers.listening = bool(sip.udp_port or sip.tcp_port)
    numbers.draining = sip.draining
    return numbers


@dataclass
class DatabaseNumbers:
    """What the last scrape read from the database (shared by the cluster)."""

    deliveries: dict[str, int] = field(default_factory=dict)
    registrations: int = 0
    read_ok: bool = True


class NodeMetrics:
    """The node's registry: a few counters kept as things happen, the rest read at scrape."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "openivr_http_request_duration_seconds",
            "API requests by route template, method and status, and how long they took",
            ["route", "method", "status"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        # Plain counts (summed over the media processes at scrape): outcome -> calls ended,
        # reason -> calls refused.
        self.call_outcomes: dict[str, int] = {}
        self.rejections: dict[str, int] = {}
        self.database = DatabaseNumbers()
        # With media processes: what each answered at the last scrape (None: no answer).
        self.workers: list[MediaNumbers | None] | None = None
        self.ctx: ServerContext | None = None
        self.registry.register(_NodeCollector(self))
        # (route, method, status) -> the histogram's child, so a request skips label handling.
        self._children: dict[tuple[str, str, str], Any] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One API request done."""
        key = (route, method if method in _METHODS else "other", str(status))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(*key)
        child.observe(seconds)

    def observe_call(self, record: CallRecord) -> None:
        """One call ended (its record is about to be stored)."""
        outcome = record.outcome if _LABEL.match(record.outcome or "") else "other"
        self.call_outcomes[outcome] = self.call_outcomes.get(outcome, 0) + 1
        if record.answered_at is None and record.sip_status >= 300:
            reason = reject_reason(record.sip_status, str((record.detail or {}).get("reason", "")))
            self.rejections[reason] = self.rejections.get(reason, 0) + 1


class _NodeCollector(Collector):
    """Reads the layers' own counters when Prometheus scrapes."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self.metrics
        info = GaugeMetricFamily(
            "openivr_node_info", "This node's name and version", labels=["node", "version"]
        )
        info.add_metric([metrics.node, __version__], 1)
        yield info
        ctx = metrics.ctx
        if ctx is None:
            return
        numbers = media_numbers(ctx)
        if metrics.workers is not None:
            answering = [n for n in metrics.workers if n is not None]
            for worker in answering:
                numbers.add(worker)
            yield GaugeMetricFamily(
                "openivr_media_processes_answering",
                "Media processes (--workers) that answered this scrape; the calls and media"
                " numbers are their sum",
                value=len(answering),
            )
        yield GaugeMetricFamily(
            "openivr_calls_up", "Calls being routed, ringing or up on this node", numbers.calls_up
        )
        calls = CounterMetricFamily(
            "openivr_calls",
            "Calls that ended on this node (every INVITE routed or refused), by outcome",
            labels=["outcome"],
        )
        for outcome, count in sorted(numbers.calls.items()):
            calls.add_metric([outcome], count)
        yield calls
        rejected = CounterMetricFamily(
            "openivr_calls_rejected",
            "Calls refused before they were answered, by reason",
            labels=["reason"],
        )
        for reason, count in sorted(numbers.rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected
        if ctx.sip_server is not None or metrics.workers is not None:
            yield from _media(numbers)
        events = CounterMetricFamily(
            "openivr_security_events",
            "Wrong passwords, refusals without a check, bans and dropped floods on this node",
            labels=["kind", "channel", "reason"],
        )
        for key, count in sorted(numbers.security.items()):
            events.add_metric(key.split("|", 2), count)
        yield events
        yield CounterMetricFamily(
            "openivr_logins_refused_busy",
            "Password checks refused because every password thread was busy (503)",
            value=security.password_work.refused,
        )
        db = metrics.database
        pending = GaugeMetricFamily(
            "openivr_voicemail_deliveries",
            "Voicemail deliveries by state (the whole cluster's, from the database)",
            labels=["state"],
        )
        for state, count in sorted(db.deliveries.items()):
            pending.add_metric([state], count)
        yield pending
        yield GaugeMetricFamily(
            "openivr_registrations",
            "Registered phones not yet expired (the whole cluster's, from the database)",
            value=db.registrations,
        )
        yield GaugeMetricFamily(
            "openivr_database_up",
            "1 when the last scrape could read the database",
            value=1 if db.read_ok else 0,
        )


def _media(numbers: MediaNumbers) -> Iterator[Metric]:
    buckets = [
        (str(bound), float(count))
        for bound, count in zip(LAG_BOUNDS, numbers.lag_buckets, strict=True)
    ]
    buckets.append(("+Inf", float(numbers.lag_count)))
    yield HistogramMetricFamily(
        "openivr_media_tick_lag_seconds",
        "How late the media clock's 20 ms ticks started: every call's audio is that late",
        buckets=buckets,
        sum_value=numbers.lag_sum,
    )
    yield CounterMetricFamily(
        "openivr_media_late_ticks",
        "Media ticks that started more than 10 ms late (a stall callers hear)",
        value=numbers.late_ticks,
    )
    yield CounterMetricFamily(
        "openivr_media_skipped_ticks",
        "Media ticks skipped because the loop was stalled longer than a tick",
        value=numbers.skipped_ticks,
    )
    yield CounterMetricFamily(
        "openivr_rtp_send_errors",
        "RTP packets to callers that the system refused to send",
        value=numbers.rtp_send_errors,
    )
    yield CounterMetricFamily(
        "openivr_sip_flood_dropped",
        "New SIP requests dropped unanswered for going over their source's rate",
        value=numbers.flood_dropped,
    )


class RequestMetrics:
    """ASGI middleware: each API request observed by route template, method and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ctx = getattr(scope["app"].state, "ctx", None) if "app" in scope else None
            if ctx is not None:
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                ctx.metrics.observe_request(
                    template, scope["method"], status, time.perf_counter() - started
                )
