"""Holidays and special days of opening hours, edited in the console: the API then has them,
and a call at such a date follows them; a conflicting save and the server's refusal are shown."""

from __future__ import annotations

import json
from typing import Any

from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from tests.console.browser import by_text, find
from tests.console.conftest import Console
from tests.console.test_shell import UNLABELLED

WEEKDAYS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}]


def _office_hours(console: Console, **extra: Any) -> dict[str, Any]:
    """Office hours on weekdays, used by the Main menu (the mailbox answers while closed)."""
    hours: dict[str, Any] = console.api(
        "POST",
        console.acct("/schedule"),
        json={"name": "Office hours", "timezone": "Europe/Stockholm", "weekly": WEEKDAYS, **extra},
    )
    menu = console.app_named("Main menu")["app_id"]
    box = console.app_named("Voice Mail")["app_id"]
    console.api(
        "PUT",
        console.acct(f"/voiceapp/{menu}"),
        json={
            "open_hours": {
                "schedule_id": hours["schedule_id"],
                "closed_action": {"action": "connect", "to": "app", "id": box},
            }
        },
    )
    return hours


def _open_dialog(console: Console) -> WebElement:
    console.go("#/schedules")
    by_text(console.driver, "li.card", "Office hours").find_element(
        "css selector", "button[name=edit]"
    ).click()
    return find(console.driver, "dialog[open]")


def _set(console: Console, element: WebElement, value: str) -> None:
    """A date or time picker's value, as a person picking one sets it."""
    console.driver.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));"
        "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
        element,
        value,
    )


def _add_day(
    console: Console, first: str, last: str = "", hours: tuple[str, str] | None = None
) -> WebElement:
    find(console.driver, "dialog button[name=add_special]").click()
    row: WebElement = console.driver.find_elements("css selector", "dialog .special-row")[-1]
    _set(console, row.find_element("css selector", "[name=special_first]"), first)
    _set(console, row.find_element("css selector", "[name=special_last]"), last)
    if hours:
        Select(row.find_element("css selector", "[name=special_kind]")).select_by_value("hours")
        _set(console, row.find_element("css selector", "[name=special_from]"), hours[0])
        _set(console, row.find_element("css selector", "[name=special_to]"), hours[1])
    return row


def _call_at(console: Console, at: str) -> str:
    """What a call into the Main menu at that instant hears and does, as the API says."""
    menu = console.app_named("Main menu")["app_id"]
    said = console.api("POST", console.acct(f"/voiceapp/{menu}/simulate"), json={"at": at})
    return json.dumps(said)


def test_add_change_and_remove_holidays_and_special_hours(console: Console) -> None:
    hours = _office_hours(console)
    driver = console.driver
    _open_dialog(console)
    assert "No holidays or special days." in console.text("dialog")
    _add_day(console, "2026-12-24", "2026-12-26")  # closed all day, the default
    _add_day(console, "2026-12-31", hours=("10:00", "14:00"))
    find(driver, "dialog button[name=dialog_save]").click()
    listed = console.wait(
        lambda: [li.text for li in driver.find_elements("css selector", "li.card .special-list li")]
    )
    assert listed[0].endswith(": closed") and "–" in listed[0], listed
    assert listed[1].endswith(": open 10:00–14:00"), listed
    path = console.acct(f"/schedule/{hours['schedule_id']}")
    saved = console.api("GET", path)
    assert saved["closed_dates"] == ["2026-12-24", "2026-12-25", "2026-12-26"]
    assert saved["special"] == [{"date": "2026-12-31", "from": "10:00", "to": "14:00"}]
    assert saved["weekly"] == WEEKDAYS  # untouched
    # Calls follow them: Christmas Day (a Friday) is closed, New Year's Eve open 10-14 only.
    assert "closed (closed date 2026-12-25)" in _call_at(console, "2026-12-25T10:00:00+01:00")
    assert "open (special 2026-12-31 10:00-14:00)" in _call_at(console, "2026-12-31T11:00:00+01:00")
    assert "outside special hours 2026-12-31" in _call_at(console, "2026-12-31T15:00:00+01:00")

    # Opened again, the three days are one row; make it four days, drop New Year's Eve.
    _open_dialog(console)
    rows = driver.find_elements("css selector", "dialog .special-row")
    assert len(rows) == 2
    first = rows[0].find_element("css selector", "[name=special_first]")
    last = rows[0].find_element("css selector", "[name=special_last]")
    assert (first.get_attribute("value"), last.get_attribute("value")) == (
        "2026-12-24",
        "2026-12-26",
    )
    _set(console, last, "2026-12-27")
    rows[1].find_element("css selector", "button[name=remove_special]").click()
    find(driver, "dialog button[name=dialog_save]").click()
    console.wait(lambda: console.api("GET", path)["special"] == [])
    assert console.api("GET", path)["closed_dates"] == [
        "2026-12-24",
        "2026-12-25",
        "2026-12-26",
        "2026-12-27",
    ]
    console.wait(
        lambda: (
            len(driver.find_elements("css selector", "li.card .special-list li")) == 1
            and not driver.find_elements("css selector", "dialog[open]")
        )
    )
    assert "open (weekly" in _call_at(console, "2026-12-28T10:00:00+01:00")

    # Removing the last one leaves the weekly hours alone.
    _open_dialog(console)
    find(driver, "dialog .special-row button[name=remove_special]").click()
    find(driver, "dialog button[name=dialog_save]").click()
    console.wait(lambda: console.api("GET", path)["closed_dates"] == [])
    assert console.api("GET", path)["weekly"] == WEEKDAYS
    assert console.page_errors() == []


def test_the_servers_refusal_names_the_day(console: Console) -> None:
    hours = _office_hours(console, closed_dates=["2026-12-24"])
    driver = console.driver
    _open_dialog(console)
    # Open from ten to ten: the server refuses it, in its own words, with the row marked.
    row = _add_day(console, "2026-12-31", hours=("10:00", "10:00"))
    find(driver, "dialog button[name=dialog_save]").click()
    refusal = find(driver, "dialog .dialog-problem .alert")
    assert refusal.text.startswith("Day or days 2: special[0].to: is the same as from")
    assert "invalid" in str(row.get_attribute("class"))
    # A day both closed and with special hours: the server's words name the day.
    _set(console, row.find_element("css selector", "[name=special_first]"), "2026-12-24")
    _set(console, row.find_element("css selector", "[name=special_to]"), "12:00")
    find(driver, "dialog button[name=dialog_save]").click()
    console.wait(lambda: "2026-12-24 is also in special" in console.text("dialog .dialog-problem"))
    # The console's own check: a range that ends before it starts.
    _set(console, row.find_element("css selector", "[name=special_first]"), "2026-12-31")
    _set(console, row.find_element("css selector", "[name=special_last]"), "2026-12-30")
    find(driver, "dialog button[name=dialog_save]").click()
    console.wait(lambda: "is before the first" in console.text("dialog .dialog-problem"))
    find(driver, "dialog button[name=dialog_cancel]").click()
    saved = console.api("GET", console.acct(f"/schedule/{hours['schedule_id']}"))
    assert saved["closed_dates"] == ["2026-12-24"] and saved["special"] == []


def test_a_conflicting_save_of_special_days_is_shown_and_never_overwrites(
    console: Console,
) -> None:
    hours = _office_hours(console)
    driver = console.driver
    _open_dialog(console)
    _add_day(console, "2026-12-24")
    # Someone else adds Midsummer's Eve meanwhile.
    path = console.acct(f"/schedule/{hours['schedule_id']}")
    console.api("PUT", path, json={"closed_dates": ["2026-06-19"]})
    find(driver, "dialog button[name=dialog_save]").click()
    conflict = find(driver, "dialog .dialog-problem .alert")
    assert "Someone else changed these hours" in conflict.text
    assert console.api("GET", path)["closed_dates"] == ["2026-06-19"]
    # Loading their version shows theirs, without the day added here, to add to again.
    conflict.find_element("css selector", "button[name=reload]").click()
    console.wait(
        lambda: (
            [
                el.get_attribute("value")
                for el in driver.find_elements("css selector", "dialog[open] [name=special_first]")
            ]
            == ["2026-06-19"]
        )
    )
    _add_day(console, "2026-12-24")
    find(driver, "dialog button[name=dialog_save]").click()
    console.wait(lambda: console.api("GET", path)["closed_dates"] == ["2026-06-19", "2026-12-24"])


def test_the_dialog_fits_a_phone_and_labels_every_control(console: Console) -> None:
    _office_hours(console, closed_dates=["2026-12-24"])
    driver = console.driver
    try:
        driver.set_window_size(360, 800)
        _open_dialog(console)
        _add_day(console, "2026-12-31", hours=("10:00", "14:00"))
        assert driver.execute_script(UNLABELLED) == []
        dialog = find(driver, "dialog[open]")
        assert driver.execute_script(
            "return arguments[0].scrollWidth <= arguments[0].clientWidth", dialog
        )
        assert driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        )
    finally:
        driver.set_window_size(1280, 900)


def test_runs_of_days_read_as_ranges_and_save_back_unchanged(console: Console) -> None:
    special = [
        {"date": day, "from": start, "to": end}
        for day in ("2026-12-31", "2027-01-01")
        for start, end in (("09:00", "12:00"), ("13:00", "15:00"))
    ]
    closed = ["2026-12-24", "2026-12-25", "2026-12-26", "2026-12-28"]
    hours = _office_hours(console, closed_dates=closed, special=special)
    path = console.acct(f"/schedule/{hours['schedule_id']}")
    before = console.api("GET", path)
    driver = console.driver
    console.go("#/schedules")
    listed = console.wait(
        lambda: [li.text for li in driver.find_elements("css selector", ".special-list li")]
    )
    # Three days closed, one more closed after a gap, two days with the same two intervals.
    assert len(listed) == 4, listed
    assert listed[0].count("2026") == 2 and listed[0].endswith(": closed"), listed
    assert listed[1].count("2026") == 1 and listed[1].endswith(": closed"), listed
    assert listed[2].endswith("2027: open 09:00–12:00"), listed
    assert listed[3].endswith("2027: open 13:00–15:00"), listed
    # Saved as it is, nothing changes (an extra save, an ETag, but the same days and hours).
    _open_dialog(console)
    assert len(driver.find_elements("css selector", "dialog .special-row")) == 4
    find(driver, "dialog button[name=dialog_save]").click()
    console.wait(lambda: not driver.find_elements("css selector", "dialog[open]"))
    after = console.api("GET", path)
    assert (after["closed_dates"], after["special"]) == (before["closed_dates"], before["special"])
