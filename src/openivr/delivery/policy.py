"""When deliveries are tried again, for how long, and how often the worker looks for work."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any

from openivr.settings import Settings

_DAY = 24 * 3600.0


@dataclass(frozen=True)
class DeliveryPolicy:
    """Retry and polling knobs of the delivery worker (seconds unless named otherwise).

    Each can be set with an OPENIVR_DELIVERY_<NAME> environment variable or in
    `Settings.extra["delivery_<name>"]`; tests shrink them to keep runs short.
    """

    # Back-off: base * 2**(attempt-1), capped, then jittered to 50-100 % of that.
    backoff_base: float = 1.0
    backoff_cap: float = 600.0
    # Temporary failures (SMTP 4xx, refused connections, HTTP 5xx) are retried this long.
    retry_for: float = 3 * _DAY
    # Outright refusals (SMTP 5xx, HTTP 4xx) are retried this long after the first one:
    # a misconfigured or briefly broken receiver often says 5xx and recovers.
    refused_retry_for: float = 1 * _DAY
    # How often the worker looks for due deliveries (it is also woken by new messages).
    poll_interval: float = 1.0
    # A claimed delivery belongs to its node this long; longer than any send may take.
    lease: float = 120.0
    # Send timeout for one SMTP conversation or webhook POST.
    send_timeout: float = 60.0
    # Deliveries sent at once by one node.
    concurrency: int = 10
    # Deliveries claimed per poll.
    batch: int = 50
    # Audio files without a row are adopted once this old (a deposit may be committing).
    adopt_after: float = 30.0
    # How often the audio store is scanned for files to adopt (also once at start-up).
    adopt_interval: float = 300.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the given failed attempt (1-based), with jitter."""
        exponent = min(max(attempt, 1) - 1, 60)
        full = min(self.backoff_cap, self.backoff_base * (2.0**exponent))
        # Jitter spreads retries of many messages that failed together (an SMTP outage).
        return full * (0.5 + 0.5 * random.random())

    def lease_time(self) -> timedelta:
        """The lease as a duration."""
        return timedelta(seconds=self.lease)

    @classmethod
    def from_settings(cls, settings: Settings, env: dict[str, str] | None = None) -> DeliveryPolicy:
        """The defaults, overridden by Settings.extra then OPENIVR_DELIVERY_* variables."""
        source = os.environ if env is None else env
        changes: dict[str, Any] = {}
        for f in fields(cls):
            raw: Any = settings.extra.get(f"delivery_{f.name}")
            env_raw = source.get(f"OPENIVR_DELIVERY_{f.name.upper()}")
            if env_raw:
                raw = env_raw
            if raw is None or raw == "":
                continue
            kind = int if f.type in ("int", int) else float
            try:
                value = kind(raw)
            except (TypeError, ValueError):
                raise ValueError(f"delivery_{f.name}: {raw!r} is not a number") from None
            if value < 0:
                raise ValueError(f"delivery_{f.name}: must not be negative")
            changes[f.name] = value
        return replace(cls(), **changes)
