"""Try a call in the page, and the voicemail a real SIP caller (SIPp) left, played in it."""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver
from selenium.webdriver.support.ui import Select

from tests.calls.conftest import run_sipp, start_target
from tests.console.browser import by_text, find
from tests.console.conftest import Console


def test_simulate_a_call_and_hear_it(console: Console) -> None:
    menu = console.app_named("Main menu")
    console.go(f"#/try/{menu['app_id']}")
    driver = console.driver
    assert Select(find(driver, "select[name=app]")).first_selected_option.text.startswith(
        "Main menu"
    )
    find(driver, "input[name=keys]").send_keys("1")
    find(driver, "button[name=run]").click()
    transcript = find(driver, "ol.transcript")
    assert "Welcome, and thank you for calling." in transcript.text
    assert "The caller presses 1" in transcript.text
    assert "“Voice Mail” (voicemail box) answers" in transcript.text
    expected = console.api(
        "POST", console.acct(f"/voiceapp/{menu['app_id']}/simulate"), json={"keys": "1"}
    )
    assert f"{expected['total_seconds']:.0f} s" in console.text(".outcome")
    find(driver, "button[name=hear]").click()
    find(driver, ".call-audio audio")
    duration = console.plays(".call-audio audio")
    assert abs(duration - expected["total_seconds"]) < 0.2
    assert console.page_errors() == []


def _first_step_presses(console: Console, key: str) -> webdriver.Chrome:
    """Try a call of the main menu with a timeline whose first step presses `key`."""
    console.go(f"#/try/{console.app_named('Main menu')['app_id']}")
    driver = console.driver
    find(driver, "details.timeline summary").click()
    find(driver, "button[name=add_step]").click()
    find(driver, "input[name=step_key]").send_keys(key)
    return driver


def test_a_timeline_step_by_step(console: Console) -> None:
    driver = _first_step_presses(console, "7")
    find(driver, "button[name=add_step]").click()
    kinds = driver.find_elements("css selector", "select[name=step_kind]")
    Select(kinds[1]).select_by_value("hangup")
    afters = driver.find_elements("css selector", "input[name=step_after]")
    afters[1].send_keys("1")
    find(driver, "button[name=run]").click()
    transcript = find(driver, "ol.transcript")
    assert "The caller presses 7" in transcript.text
    assert "not a valid option" in transcript.text


def test_a_key_at_the_first_second_stops_the_welcome_and_chooses(console: Console) -> None:
    driver = _first_step_presses(console, "1")
    Select(find(driver, "select[name=step_when]")).select_by_value("at")
    assert find(driver, "input[name=step_at]").get_attribute("value") == "0"
    find(driver, "button[name=run]").click()
    transcript = find(driver, "ol.transcript")
    # The caller who knows the menu presses 1 at once: the welcome is cut, Voice Mail answers.
    assert "“Welcome, and thank you for calling.” (cut short)" in transcript.text
    assert "The caller presses 1" in transcript.text
    assert "“Voice Mail” (voicemail box) answers" in transcript.text
    # While a message plays, but no message named: the server's words, the step marked.
    Select(find(driver, "select[name=step_when]")).select_by_value("during")
    find(driver, "button[name=run]").click()
    alert = by_text(driver, ".result .alert.error", "timeline[0].during: must name a prompt")
    assert alert.text == "The call could not run: timeline[0].during: must name a prompt"
    assert find(driver, ".step").get_attribute("aria-invalid") == "true"
    assert driver.switch_to.active_element.get_attribute("name") == "step_during"
    find(driver, "input[name=step_during]").send_keys("menu")
    find(driver, "button[name=run]").click()
    transcript = find(driver, "ol.transcript")
    assert "“For Voice Mail, press 1.” (cut short)" in transcript.text
    assert "“Voice Mail” (voicemail box) answers" in transcript.text
    assert find(driver, ".step").get_attribute("aria-invalid") is None
    assert console.page_errors() == []


def test_play_a_voicemail_left_by_a_sip_caller(console: Console, tmp_path: Path) -> None:
    box = console.leave_voicemail(tmp_path)
    url = console.acct(f"/voiceapp/{box}/voicemail")
    message = console.wait(lambda: console.api("GET", url))[0]
    console.go(f"#/voicemail/{box}")
    driver = console.driver
    card_css = f"li[data-message-id='{message['message_id']}']"
    card = find(driver, card_css)
    assert "+46701234567" in card.text and "New" in card.text
    by_text(driver, "header nav a[href='#/voicemail'] .count", "1")  # one new message
    duration = console.plays(f"{card_css} audio")
    assert abs(duration - message["duration"]) < 0.3
    # Playing it marks it heard, for every client of the API.
    console.wait(lambda: console.api("GET", f"{url}/{message['message_id']}")["read"] is True)
    console.wait(
        lambda: (
            not driver.find_element(
                "css selector", "header nav a[href='#/voicemail'] .count"
            ).is_displayed()
        )
    )
    download = find(driver, f"{card_css} a[download]")
    assert str(download.get_attribute("href")).startswith(console.server.base_url + url)
    find(driver, f"{card_css} button[name=details]").click()
    by_text(driver, f"{card_css} .delivery", "E-mail")
    find(driver, f"{card_css} button[name=delete]").click()
    by_text(driver, "dialog button", "Delete").click()
    by_text(driver, "main", "No messages yet.")
    assert console.api("GET", url) == []


def test_the_call_log_shows_a_real_call_and_its_detail(console: Console, tmp_path: Path) -> None:
    console.leave_voicemail(tmp_path, "2000")
    call = console.wait(
        lambda: [c for c in console.api("GET", console.acct("/call")) if c["end_time"]]
    )[0]
    console.go("#/calls")
    driver = console.driver
    row = find(driver, f"tr[data-call-id='{call['call_id']}']")
    assert "+46701234567" in row.text and "Voice Mail" in row.text
    assert "Left a voicemail" in row.text
    row.find_element("css selector", "button[name=open]").click()
    detail = find(driver, "tr.call-detail dl")
    assert call["detail"]["voicemail_id"] in detail.text
    # The API's filters: another caller's calls are not this one.
    find(driver, "input[name=from]").send_keys("+4600000000")
    console.button("Show calls").click()
    by_text(driver, "main", "No calls match.")


def test_the_call_log_names_each_team_member_rung_in_order(
    console: Console, tmp_path: Path
) -> None:
    values = {"from_user": r"\+46701234567"}
    ringing = start_target("callee_rings.xml", tmp_path, {**values, "ruri_user": "anna"})
    answering = start_target(
        "callee_hangs_up.xml",
        tmp_path,
        {
            **values,
            "ruri_user": "bob",
            "ring_ms": "400",
            "hold_ms": "2000",
            "callee_pt": "8",
            "callee_codec": "PCMA",
        },
        extra=("-rtp_echo",),
    )
    people = {}
    for name, port in (("Anna", ringing.port), ("Bob", answering.port)):
        user = console.api(
            "POST",
            console.acct("/user"),
            json={
                "user_fname": name,
                "user_lname": "Lind",
                "email": f"{name.lower()}-{console.account.account_id}@example.com",
                "password": "pass-word-1",
                "sip_uri": f"sip:{name.lower()}@127.0.0.1:{port}",
            },
        )
        people[name] = user["user_id"]
    team = console.api(
        "POST",
        console.acct("/team"),
        json={
            "name": "Sales",
            "members": [people["Anna"], people["Bob"]],
            "strategy": "order",
            "ring_seconds": 5,
        },
    )
    menu = console.app_named("Main menu")["app_id"]
    console.api(
        "PUT",
        console.acct(f"/voiceapp/{menu}"),
        json={"menu": {"digit_3": {"action": "call", "to": "csg", "id": team["team_id"]}}},
    )
    # Key 3: Anna rings 5 s and is cancelled; Bob answers, talks and hangs up.
    run_sipp(
        console.server,
        "transfer_talk.xml",
        tmp_path,
        menu,
        values={"key": "3", "wait_ms": "800", "ring_wait_ms": "8000", "bye_timeout": "25000"},
    )
    ringing.finish()
    answering.finish()
    call = console.wait(
        lambda: [c for c in console.api("GET", console.acct("/call")) if c["end_time"]]
    )[0]
    console.go("#/calls")
    driver = console.driver
    row = find(driver, f"tr[data-call-id='{call['call_id']}']")
    assert "Put through" in row.text
    row.find_element("css selector", "button[name=open]").click()
    find(driver, "tr.call-detail ol.legs")
    legs = [el.text for el in driver.find_elements("css selector", "tr.call-detail .leg-summary")]
    assert legs == ["Team Sales, #1: Anna Lind — no answer", "Team Sales, #2: Bob Lind — answered"]
    assert console.page_errors() == []


def test_try_a_call_at_a_chosen_moment_and_say_who_in_the_team_answers(
    console: Console,
) -> None:
    anna = console.api(
        "POST",
        console.acct("/user"),
        json={
            "user_fname": "Anna",
            "user_lname": "Lind",
            "email": f"anna-{console.account.account_id}@example.com",
            "password": "pass-word-1",
            "sip_uri": "sip:anna@127.0.0.1:5091",
        },
    )
    box = console.app_named("Voice Mail")["app_id"]
    team = console.api(
        "POST",
        console.acct("/team"),
        json={
            "name": "Sales",
            "members": [anna["user_id"]],
            "no_answer": {"action": "connect", "to": "app", "id": box},
        },
    )
    hours = console.api(
        "POST",
        console.acct("/schedule"),
        json={
            "name": "Office hours",
            "timezone": "Europe/Stockholm",
            "weekly": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}
            ],
            "closed_dates": ["2026-12-24"],
        },
    )
    menu = console.app_named("Main menu")["app_id"]
    console.api(
        "PUT",
        console.acct(f"/voiceapp/{menu}"),
        json={
            "menu": {"digit_3": {"action": "call", "to": "csg", "id": team["team_id"]}},
            "open_hours": {
                "schedule_id": hours["schedule_id"],
                "closed_action": {"action": "connect", "to": "app", "id": box},
            },
        },
    )
    console.go(f"#/try/{menu}")
    driver = console.driver

    def call_at(moment: str) -> str:
        console.pick("input[name=at]", moment)
        find(driver, "button[name=run]").click()
        return str(
            console.wait(
                lambda: (
                    moment[:10] in console.text("ol.transcript") and console.text("ol.transcript")
                )
            )
        )

    # Christmas Eve: closed all day, by its closed date, whatever the browser's time zone.
    said = call_at("2026-12-24T12:00")
    assert "closed (closed date 2026-12-24)" in said
    assert "“Voice Mail” (voicemail box) answers" in said
    # A Wednesday at noon: open; key 3 rings the team and Anna answers.
    find(driver, "details.timeline summary").click()
    find(driver, "button[name=add_step]").click()
    find(driver, "input[name=step_key]").send_keys("3")
    find(driver, "button[name=add_step]").click()
    kinds = driver.find_elements("css selector", "select[name=step_kind]")
    Select(kinds[1]).select_by_value("team")
    Select(find(driver, "select[name=step_team]")).select_by_value(anna["user_id"])
    said = call_at("2026-12-23T12:00")
    assert "open (weekly mon,tue,wed,thu,fri 09:00-17:00)" in said
    anna_is = f"Anna Lind ({anna['user_id']})"
    assert f"ringing team Sales at once: {anna_is}: answered by {anna_is}" in said
    assert "put through to sip:anna@127.0.0.1:5091" in console.text(".outcome")
    # Nobody answers: "all our staff are busy", then the mailbox.
    Select(find(driver, "select[name=step_team]")).select_by_value("nobody")
    find(driver, "button[name=run]").click()
    console.wait(lambda: "all our staff are busy" in console.text("ol.transcript"))
    assert console.page_errors() == []


def test_the_call_log_says_how_a_callback_went(console: Console, tmp_path: Path) -> None:
    # call1 is a SIP phone that is busy: the callback ends there, call2 is never rung.
    phone = start_target(
        "callee_busy.xml", tmp_path, {"ruri_user": "desk", "from_user": "anonymous"}
    )
    r = console.server.client.post(
        "/make-calls/call/call-back",
        headers=console.account.headers,
        json={"call1": f"sip:desk@127.0.0.1:{phone.port}", "call2": "sip:bob@127.0.0.1:9"},
    )
    assert r.status_code == 200, r.text
    session = r.json()["response"]["session_id"]
    phone.finish()
    console.wait(lambda: [c for c in console.api("GET", console.acct("/call")) if c["end_time"]])
    console.go("#/calls")
    row = find(console.driver, f"tr[data-call-id='{session}']")
    assert "Callback: call 1 busy" in row.text and "sip:bob@127.0.0.1:9" in row.text
    row.find_element("css selector", "button[name=open]").click()
    detail = find(console.driver, "tr.call-detail")
    assert "call1 was busy (486)" in detail.text
