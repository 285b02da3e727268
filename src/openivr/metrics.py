"""What an operator watches: this node's numbers in Prometheus' text format (`GET /metrics`).

Most numbers are counters the layers keep anyway (the media clock's lag, the SIP server's calls,
the security log's events), read only when Prometheus scrapes, so a call or a request pays
nothing for them. What is counted here on the hot path is one histogram observation per API
request (labelled by route template, method and status: a bounded set, never raw paths) and
one counter per call that ends. Voicemail deliveries and registrations are read from the
database at scrape time; they are the cluster's (every node shares the database), the rest
are this node's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
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
        self.calls = Counter(
            "openivr_calls",
            "Calls that ended on this node (every INVITE routed or refused), by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "openivr_calls_rejected",
            "Calls refused before they were answered, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.database = DatabaseNumbers()
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
        self.calls.labels(outcome).inc()
        if record.answered_at is None and record.sip_status >= 300:
            reason = str((record.detail or {}).get("reason", ""))
            self.rejected.labels(reject_reason(record.sip_status, reason)).inc()


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
        sip = ctx.sip_server if ctx is not None else None
        yield GaugeMetricFamily(
            "openivr_calls_up",
            "Calls being routed, ringing or up on this node",
            value=sip.active_calls if sip is not None else 0,
        )
        if sip is not None:
            yield from _media(sip)
        if ctx is not None:
            events = CounterMetricFamily(
                "openivr_security_events",
                "Wrong passwords, refusals without a check, bans and dropped floods on this node",
                labels=["kind", "channel", "reason"],
            )
            for (kind, channel, reason), count in sorted(ctx.security.counts.items()):
                events.add_metric([kind, channel, reason], count)
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


def _media(sip: Any) -> Iterator[Metric]:
    clock = sip.clock
    buckets = [
        (str(bound), float(count))
        for bound, count in zip(LAG_BOUNDS, clock.lag_buckets, strict=False)
    ]
    buckets.append(("+Inf", float(clock.lag_count)))
    lag = HistogramMetricFamily(
        "openivr_media_tick_lag_seconds",
        "How late the media clock's 20 ms ticks started: every call's audio is that late",
        buckets=buckets,
        sum_value=clock.lag_sum,
    )
    yield lag
    yield CounterMetricFamily(
        "openivr_media_late_ticks",
        "Media ticks that started more than 10 ms late (a stall callers hear)",
        value=clock.late_ticks,
    )
    yield CounterMetricFamily(
        "openivr_media_skipped_ticks",
        "Media ticks skipped because the loop was stalled longer than a tick",
        value=clock.skipped_ticks,
    )
    errors = sip.rtp_send_errors + sum(
        call.rtp_session.stats.send_errors for call in list(sip.calls.values())
    )
    yield CounterMetricFamily(
        "openivr_rtp_send_errors",
        "RTP packets to callers that the system refused to send",
        value=errors,
    )
    flood = sip.flood
    yield CounterMetricFamily(
        "openivr_sip_flood_dropped",
        "New SIP requests dropped unanswered for going over their source's rate",
        value=flood.dropped if flood is not None else 0,
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
