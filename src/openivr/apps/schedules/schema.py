"""A schedule's fields: validation (by the engine's own parser, so what is saved is what calls
follow), the normalised stored form and the public shape."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from openivr.apps import validation as v
from openivr.apps.validation import FieldError
from openivr.engine.config import ConfigError
from openivr.engine.hours import WEEKDAYS, ScheduleConfig

WRITABLE = ("name", "timezone", "weekly", "closed_dates", "special")
READ_ONLY = ("schedule_id", "account_id", "create_date")
LIMITS = {"weekly": 100, "closed_dates": 1000, "special": 1000}
DEFAULTS: dict[str, Any] = {"timezone": "UTC", "weekly": [], "closed_dates": [], "special": []}


def build_schedule(
    body: Mapping[str, Any], account_timezone: str, current: Mapping[str, Any] | None = None
) -> tuple[str | None, dict[str, Any]]:
    """Validate a create/update body; return (new name or None, the schedule's full config).

    A new schedule without a `timezone` takes the account's.
    """
    cfg = copy.deepcopy(dict(current) if current is not None else DEFAULTS)
    if current is None:
        cfg["timezone"] = account_timezone or "UTC"
    for key, default in DEFAULTS.items():
        cfg.setdefault(key, copy.deepcopy(default))
    if "timezone" in body:
        cfg["timezone"] = v.timezone("timezone", body["timezone"])
    for field_name in ("weekly", "closed_dates", "special"):
        if field_name in body:
            value = body[field_name]
            if value is None:
                value = []
            if not isinstance(value, list):
                raise FieldError(field_name, "must be a list")
            if len(value) > LIMITS[field_name]:
                raise FieldError(field_name, f"at most {LIMITS[field_name]} entries")
            cfg[field_name] = value
    try:
        parsed = ScheduleConfig.from_api(cfg, account_id="")
    except ConfigError as exc:
        raise FieldError(exc.field, exc.reason) from None
    name = v.text("name", body["name"]) if "name" in body else None
    return name, stored(parsed)


def stored(schedule: ScheduleConfig) -> dict[str, Any]:
    """The normalised form kept and shown: lower-case weekdays, dates in order."""
    return {
        "timezone": schedule.timezone,
        "weekly": [
            {
                "days": [WEEKDAYS[d] for d in w.days],
                "from": w.interval.describe().split("-")[0],
                "to": w.interval.describe().split("-")[1],
            }
            for w in schedule.weekly
        ],
        "closed_dates": sorted(d.isoformat() for d in schedule.closed_dates),
        "special": [
            {
                "date": day.isoformat(),
                "from": i.describe().split("-")[0],
                "to": i.describe().split("-")[1],
            }
            for day in sorted(schedule.special)
            for i in schedule.special[day]
        ],
    }


def schedule_view(
    schedule_id: str, account_id: str, name: str, config: Mapping[str, Any], create_date: str
) -> dict[str, Any]:
    """The public shape of a schedule."""
    view: dict[str, Any] = {"schedule_id": schedule_id, "account_id": account_id, "name": name}
    for key, default in DEFAULTS.items():
        view[key] = copy.deepcopy(config.get(key, default))
    view["create_date"] = create_date
    return view
