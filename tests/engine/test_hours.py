"""Opening hours at the instants that go wrong: daylight-saving switches in Europe and the US,
intervals past midnight, holidays and special days.

Instants are written in UTC by hand (not computed with zoneinfo) so the tests check the
offsets the rules must apply, not the library against itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from openivr.engine.config import ConfigError
from openivr.engine.hours import ScheduleConfig, instant, open_at

EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def schedule(zone: str, **fields: Any) -> ScheduleConfig:
    return ScheduleConfig.from_api(
        {"schedule_id": "SC1", "timezone": zone, **fields}, account_id="100"
    )


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


NINE_TO_FIVE = {"weekly": [{"days": EVERY_DAY, "from": "09:00", "to": "17:00"}]}


# (UTC instant, open?) around Europe's switches: CET is UTC+1, CEST UTC+2.
# 2026-03-29 clocks go 02:00 -> 03:00; 2026-10-25 they go 03:00 -> 02:00.
STOCKHOLM = [
    ("2026-03-28T07:59:00", False),  # Sat 08:59 CET
    ("2026-03-28T08:00:00", True),  # Sat 09:00 CET
    ("2026-03-29T06:59:00", False),  # Sun 08:59 CEST, the day of the switch
    ("2026-03-29T07:00:00", True),  # Sun 09:00 CEST
    ("2026-03-29T07:30:00", True),  # 09:30 local: the same UTC time was 08:30 the day before
    ("2026-03-30T06:59:00", False),  # Mon 08:59 CEST
    ("2026-03-30T07:00:00", True),
    ("2026-03-29T14:59:00", True),  # Sun 16:59 CEST
    ("2026-03-29T15:00:00", False),  # Sun 17:00 CEST
    ("2026-10-24T06:59:00", False),  # Sat 08:59 CEST
    ("2026-10-24T07:00:00", True),
    ("2026-10-25T07:59:00", False),  # Sun 08:59 CET, the day clocks go back
    ("2026-10-25T08:00:00", True),  # Sun 09:00 CET
    ("2026-10-25T07:30:00", False),  # 08:30 local: the same UTC time was open the day before
    ("2026-10-26T08:00:00", True),
]

# The US: EST is UTC-5, EDT UTC-4. 2026-03-08 02:00 -> 03:00; 2026-11-01 02:00 -> 01:00.
NEW_YORK = [
    ("2026-03-07T13:59:00", False),  # Sat 08:59 EST
    ("2026-03-07T14:00:00", True),
    ("2026-03-08T12:59:00", False),  # Sun 08:59 EDT
    ("2026-03-08T13:00:00", True),  # Sun 09:00 EDT
    ("2026-03-09T12:59:00", False),
    ("2026-03-09T13:00:00", True),
    ("2026-10-31T12:59:00", False),  # Sat 08:59 EDT
    ("2026-10-31T13:00:00", True),
    ("2026-11-01T13:59:00", False),  # Sun 08:59 EST
    ("2026-11-01T14:00:00", True),
    ("2026-11-01T21:59:00", True),  # Sun 16:59 EST
    ("2026-11-01T22:00:00", False),
]


@pytest.mark.parametrize(("at", "expected"), STOCKHOLM)
def test_nine_to_five_in_stockholm_across_both_switches(at: str, expected: bool) -> None:
    result = open_at(schedule("Europe/Stockholm", **NINE_TO_FIVE), utc(at))
    assert result.open is expected, result.describe()


@pytest.mark.parametrize(("at", "expected"), NEW_YORK)
def test_nine_to_five_in_new_york_across_both_switches(at: str, expected: bool) -> None:
    result = open_at(schedule("America/New_York", **NINE_TO_FIVE), utc(at))
    assert result.open is expected, result.describe()


def test_the_rule_and_the_local_time_are_told() -> None:
    hours = schedule(
        "Europe/Stockholm",
        weekly=[{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}],
    )
    opened = open_at(hours, utc("2026-03-30T07:00:00"))
    assert opened.rule == "weekly mon,tue,wed,thu,fri 09:00-17:00"
    assert opened.describe().startswith("open (weekly mon,tue,wed,thu,fri 09:00-17:00) at Mon")
    assert "09:00 CEST" in opened.describe()
    closed = open_at(hours, utc("2026-03-29T10:00:00"))  # a Sunday
    assert not closed.open and closed.rule == "outside opening hours on sun"


NIGHTS = {"weekly": [{"days": ["fri"], "from": "22:00", "to": "06:00"}]}


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-06-05T19:59:00", False),  # Fri 21:59 CEST
        ("2026-06-05T20:00:00", True),  # Fri 22:00
        ("2026-06-05T23:30:00", True),  # Sat 01:30, past midnight
        ("2026-06-06T03:59:00", True),  # Sat 05:59
        ("2026-06-06T04:00:00", False),  # Sat 06:00
        ("2026-06-04T23:30:00", False),  # Fri 01:30: Thursday has no night
    ],
)
def test_an_interval_runs_past_midnight(at: str, expected: bool) -> None:
    assert open_at(schedule("Europe/Stockholm", **NIGHTS), utc(at)).open is expected


def test_a_night_belongs_to_the_day_it_starts_on() -> None:
    saturday_off = schedule("Europe/Stockholm", **NIGHTS, closed_dates=["2026-06-06"])
    assert open_at(saturday_off, utc("2026-06-05T23:30:00")).open  # Sat 01:30
    friday_off = schedule("Europe/Stockholm", **NIGHTS, closed_dates=["2026-06-05"])
    closed = open_at(friday_off, utc("2026-06-05T23:30:00"))
    assert not closed.open


def test_a_night_across_the_spring_switch() -> None:
    # Saturday 22:00 to Sunday 06:00 in Stockholm, the night clocks skip 02:00-03:00.
    nights = schedule(
        "Europe/Stockholm", weekly=[{"days": ["sat"], "from": "22:00", "to": "06:00"}]
    )
    assert open_at(nights, utc("2026-03-28T21:00:00")).open  # Sat 22:00 CET
    assert open_at(nights, utc("2026-03-29T01:30:00")).open  # Sun 03:30 CEST
    assert open_at(nights, utc("2026-03-29T03:59:00")).open  # Sun 05:59 CEST
    assert not open_at(nights, utc("2026-03-29T04:00:00")).open  # Sun 06:00 CEST


def test_the_repeated_autumn_hour_counts_twice() -> None:
    # 01:00-02:00 on 2026-11-01 in New York happens once in EDT and once in EST.
    night = schedule("America/New_York", weekly=[{"days": ["sun"], "from": "01:00", "to": "02:00"}])
    assert open_at(night, utc("2026-11-01T05:30:00")).open  # 01:30 EDT
    assert open_at(night, utc("2026-11-01T06:30:00")).open  # 01:30 EST
    assert not open_at(night, utc("2026-11-01T07:00:00")).open  # 02:00 EST


def test_holidays_and_special_days() -> None:
    hours = schedule(
        "Europe/Stockholm",
        **NINE_TO_FIVE,
        closed_dates=["2026-12-24", "2026-12-25"],
        special=[
            {"date": "2026-12-31", "from": "10:00", "to": "12:00"},
            {"date": "2026-12-31", "from": "13:00", "to": "14:00"},
        ],
    )
    eve = open_at(hours, instant("2026-12-24T10:00:00+01:00"))
    assert not eve.open and eve.rule == "closed date 2026-12-24"
    assert open_at(hours, instant("2026-12-23T10:00:00+01:00")).open
    new_year = [
        ("2026-12-31T09:30:00+01:00", False),
        ("2026-12-31T10:00:00+01:00", True),
        ("2026-12-31T12:30:00+01:00", False),
        ("2026-12-31T13:59:00+01:00", True),
        ("2026-12-31T15:00:00+01:00", False),
    ]
    for at, expected in new_year:
        assert open_at(hours, instant(at)).open is expected, at
    assert open_at(hours, instant("2026-12-31T10:00:00+01:00")).rule == (
        "special 2026-12-31 10:00-12:00"
    )
    assert "outside special hours" in open_at(hours, instant("2026-12-31T15:00:00+01:00")).rule


def test_a_whole_day_and_a_schedule_that_never_opens() -> None:
    always = schedule("UTC", weekly=[{"days": EVERY_DAY, "from": "00:00", "to": "24:00"}])
    assert open_at(always, utc("2026-05-01T00:00:00")).open
    assert open_at(always, utc("2026-05-01T23:59:00")).open
    assert always.ever_open
    never = schedule("UTC", closed_dates=["2026-05-01"])
    assert not never.ever_open
    assert not open_at(never, utc("2026-05-02T12:00:00")).open


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"weekly": [{"days": ["mon"], "from": "9", "to": "17:00"}]}, "weekly[0].from", "09:00"),
        ({"weekly": [{"days": ["mon"], "from": "24:00", "to": "02:00"}]}, "weekly[0].from", "24"),
        ({"weekly": [{"days": ["mon"], "from": "09:00", "to": "24:30"}]}, "weekly[0].to", ""),
        (
            {"weekly": [{"days": ["mon", "mon"], "from": "09:00", "to": "10:00"}]},
            "weekly[0].days",
            "twice",
        ),
        (
            {"weekly": [{"days": ["mon"], "from": "09:00", "to": "10:00", "x": 1}]},
            "weekly[0]",
            "unknown",
        ),
        (
            {"special": [{"date": "31/12/2026", "from": "09:00", "to": "10:00"}]},
            "special[0].date",
            "",
        ),
        ({"closed_dates": "2026-12-24"}, "closed_dates", "list"),
    ],
)
def test_unusable_schedules_name_the_field(fields: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        schedule(str(fields.pop("timezone", "UTC")), **fields)
    assert raised.value.field == field and words in raised.value.reason


def test_instants_need_their_offset() -> None:
    assert instant("2026-12-24T10:00:00Z") == utc("2026-12-24T10:00:00")
    assert instant("2026-12-24T10:00:00+01:00") == utc("2026-12-24T09:00:00")
    with pytest.raises(ConfigError, match="offset"):
        instant("2026-12-24T10:00:00")
    with pytest.raises(ConfigError, match="ISO 8601"):
        instant("Christmas Eve")
