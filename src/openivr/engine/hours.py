"""Opening hours: whether a schedule is open at an instant, and by which rule.

Pure: the instant always comes from the caller (the driver's clock, the simulator's `at`).
Times are wall-clock times in the schedule's IANA zone, so "09:00" is nine o'clock local time
on every day of the year, across daylight-saving changes:

- A day's hours come from its `special` entries when it has any (other hours that day), else
  from the weekly entries naming its weekday; a date in `closed_dates` has none.
- An interval holds from `from` up to, not including, `to`. One whose `to` is not after its
  `from` (`22:00`-`06:00`) runs past midnight into the next day; `24:00` ends at midnight.
  Such an interval belongs to the day it starts on: Friday's `22:00`-`06:00` runs into
  Saturday morning even when Saturday is a closed date, and does not run at all when Friday is.
- Wall-clock comparison makes the hours skipped in spring (02:00-03:00 in Europe) never
  happen, and the repeated hour in autumn count twice, as a clock on the wall would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from openivr.engine.config import ConfigError

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
DAY_MINUTES = 24 * 60


@dataclass(frozen=True, slots=True)
class Interval:
    """Open from `start` to `end`, minutes after the day's midnight; `end` may pass 1440."""

    start: int
    end: int

    def describe(self) -> str:
        """ "09:00-17:00", "22:00-06:00"."""
        end = self.end if self.end == DAY_MINUTES else self.end % DAY_MINUTES
        return f"{_clock(self.start)}-{_clock(end)}"


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    """One weekly entry: these weekdays (0 = Monday), this interval."""

    days: tuple[int, ...]
    interval: Interval

    def describe(self) -> str:
        """ "weekly mon,tue 09:00-17:00"."""
        names = ",".join(WEEKDAYS[d] for d in self.days)
        return f"weekly {names} {self.interval.describe()}"


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """A schedule as the engine sees it (see the module docstring for the rules)."""

    schedule_id: str
    account_id: str
    name: str = ""
    timezone: str = "UTC"
    weekly: tuple[WeeklyHours, ...] = ()
    closed_dates: frozenset[date] = frozenset()
    special: Mapping[date, tuple[Interval, ...]] = field(default_factory=dict)

    @property
    def ever_open(self) -> bool:
        """Whether any rule opens the line at all."""
        return any(w.days for w in self.weekly) or any(self.special.values())

    @classmethod
    def from_api(
        cls, payload: Mapping[str, Any], *, account_id: str, default_timezone: str = "UTC"
    ) -> ScheduleConfig:
        """Build from the API's shape; ConfigError names the field of anything unusable."""
        if not isinstance(payload, Mapping):
            raise ConfigError("schedule", "must be an object")
        zone = payload.get("timezone") or default_timezone
        if not isinstance(zone, str) or not zone.strip():
            raise ConfigError("timezone", "must be an IANA time zone name like Europe/Stockholm")
        zone = zone.strip()
        if _zone(zone) is None:
            raise ConfigError("timezone", f"unknown time zone {zone!r}")
        weekly = tuple(
            _weekly(f"weekly[{i}]", raw) for i, raw in enumerate(_list(payload, "weekly"))
        )
        closed = [
            _date(f"closed_dates[{i}]", raw) for i, raw in enumerate(_list(payload, "closed_dates"))
        ]
        special: dict[date, list[Interval]] = {}
        for i, raw in enumerate(_list(payload, "special")):
            where = f"special[{i}]"
            entry = _entry(where, raw, ("date", "from", "to"))
            day = _date(f"{where}.date", entry.get("date"))
            special.setdefault(day, []).append(_interval(where, entry))
        both = sorted(set(closed) & set(special))
        if both:
            raise ConfigError(
                "closed_dates",
                f"{both[0].isoformat()} is also in special: a date is closed or has special hours",
            )
        return cls(
            schedule_id=str(payload.get("schedule_id") or ""),
            account_id=account_id,
            name=str(payload.get("name") or ""),
            timezone=zone,
            weekly=weekly,
            closed_dates=frozenset(closed),
            special={day: tuple(found) for day, found in special.items()},
        )


@dataclass(frozen=True, slots=True)
class Openness:
    """Whether the line is open at an instant, the rule that says so, and the local time."""

    open: bool
    rule: str
    local: datetime

    def describe(self) -> str:
        """ "open (weekly mon-fri 09:00-17:00) at Mon 2026-03-30 09:00 Europe/Stockholm"."""
        state = "open" if self.open else "closed"
        when = self.local.strftime("%a %Y-%m-%d %H:%M")
        return f"{state} ({self.rule}) at {when} {self.local.tzname()}"


def open_at(schedule: ScheduleConfig, instant: datetime) -> Openness:
    """Whether `schedule` is open at `instant` (an aware datetime), and which rule decides."""
    if instant.tzinfo is None:
        raise ValueError("the instant must carry its UTC offset")
    zone = _zone(schedule.timezone) or ZoneInfo("UTC")
    local = instant.astimezone(zone)
    wall = local.replace(tzinfo=None)
    today = wall.date()
    minute = wall.hour * 60 + wall.minute
    # Yesterday's intervals that ran past midnight, then today's.
    for day, offset in ((today - timedelta(days=1), DAY_MINUTES), (today, 0)):
        for interval, rule in _intervals(schedule, day):
            if interval.start <= minute + offset < interval.end:
                return Openness(True, rule, local)
    if today in schedule.closed_dates:
        return Openness(False, f"closed date {today.isoformat()}", local)
    if today in schedule.special:
        ranges = ", ".join(i.describe() for i in schedule.special[today])
        return Openness(False, f"outside special hours {today.isoformat()} {ranges}", local)
    return Openness(False, f"outside opening hours on {WEEKDAYS[today.weekday()]}", local)


def _intervals(schedule: ScheduleConfig, day: date) -> list[tuple[Interval, str]]:
    if day in schedule.closed_dates:
        return []
    special = schedule.special.get(day)
    if special is not None:
        return [(i, f"special {day.isoformat()} {i.describe()}") for i in special]
    weekday = day.weekday()
    return [(w.interval, w.describe()) for w in schedule.weekly if weekday in w.days]


def instant(text: str, field_name: str = "at") -> datetime:
    """An ISO 8601 instant with its offset ("2026-12-24T10:00:00+01:00", "...Z")."""
    if not isinstance(text, str):
        raise ConfigError(field_name, "must be an ISO 8601 date and time with its offset")
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(
            field_name, f"{text!r} is not an ISO 8601 date and time like 2026-12-24T10:00:00+01:00"
        ) from None
    if parsed.tzinfo is None:
        raise ConfigError(field_name, f"{text!r} needs its UTC offset (+01:00) or Z")
    return parsed


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _list(payload: Mapping[str, Any], name: str) -> Sequence[Any]:
    value = payload.get(name)
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ConfigError(name, "must be a list")
    return value


def _entry(where: str, raw: Any, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(where, f"must be an object with {', '.join(keys)}")
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise ConfigError(where, f"unknown keys {unknown}; an entry has {', '.join(keys)}")
    for key in keys:
        if key not in raw:
            raise ConfigError(f"{where}.{key}", "is required")
    return raw


def _weekly(where: str, raw: Any) -> WeeklyHours:
    entry = _entry(where, raw, ("days", "from", "to"))
    days_raw = entry["days"]
    if isinstance(days_raw, str):
        days_raw = [days_raw]
    if not isinstance(days_raw, list | tuple) or not days_raw:
        raise ConfigError(f"{where}.days", "must be a list of weekdays like ['mon', 'tue']")
    days: list[int] = []
    for value in days_raw:
        name = value.strip().lower()[:3] if isinstance(value, str) else ""
        if name not in WEEKDAYS:
            raise ConfigError(f"{where}.days", f"{value!r} is not one of {', '.join(WEEKDAYS)}")
        if WEEKDAYS.index(name) in days:
            raise ConfigError(f"{where}.days", f"{name} is named twice")
        days.append(WEEKDAYS.index(name))
    return WeeklyHours(tuple(sorted(days)), _interval(where, entry))


def _interval(where: str, entry: Mapping[str, Any]) -> Interval:
    start = _minutes(f"{where}.from", entry["from"])
    end = _minutes(f"{where}.to", entry["to"])
    if start == DAY_MINUTES:
        raise ConfigError(f"{where}.from", "24:00 can only end an interval; start at 00:00")
    if start == end:
        raise ConfigError(f"{where}.to", "is the same as from; use 00:00 to 24:00 for a whole day")
    if end <= start:
        end += DAY_MINUTES  # past midnight into the next day
    return Interval(start, end)


def _minutes(where: str, value: Any) -> int:
    match = _CLOCK.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(where, f"must be a time like 09:00 (00:00 to 24:00); got {value!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours == 24 and minutes:
        raise ConfigError(where, f"must be a time like 09:00 (00:00 to 24:00); got {value!r}")
    return hours * 60 + minutes


def _date(where: str, value: Any) -> date:
    if not isinstance(value, str) or not _DATE.match(value.strip()):
        raise ConfigError(where, f"must be a date like 2026-12-24; got {value!r}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(where, f"{value!r} is not a date in the calendar") from None
