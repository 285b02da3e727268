"""The admins' pages: call recordings made by a real SIP call (played, downloaded, deleted) and
security events (a wrong password typed into the sign-in form); what a regular user sees."""

from __future__ import annotations

from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.support.ui import Select

from openivr.audio.wav import parse_wav
from tests.conftest import base_settings, run_server
from tests.console.browser import by_text, find
from tests.console.conftest import Console, open_signed_out, sign_in


def test_a_recorded_call_plays_downloads_and_is_deleted(console: Console, tmp_path: Path) -> None:
    # The admin chooses to record incoming calls, on the recordings page.
    console.go("#/recordings")
    driver = console.driver
    by_text(driver, "main", "No recordings yet.")
    assert "Calls recorded: No calls" in console.text("details.recording-setting summary")
    Select(find(driver, "select[name=call_recording]")).select_by_value("inbound")
    find(driver, "button[name=save_recording]").click()
    console.wait(lambda: console.api("GET", console.acct())["call_recording"] == "inbound")
    console.leave_voicemail(tmp_path)
    query = f"/call-recording?account_id={console.account.account_id}&fields=voice_call_details"

    def finished() -> dict[str, object] | None:
        rows = console.api("GET", query)
        done = rows and rows[0]["status"] != "recording"
        return rows[0] if done and rows[0]["voice_call_details"]["direction"] else None

    recording = console.wait(finished)
    assert recording["status"] == "complete", recording
    console.go("#/calls")
    find(driver, "main h1")
    console.go("#/recordings")
    card_css = f"li[data-recording-id='{recording['call_recording_id']}']"
    card = find(driver, card_css)
    assert "+46701234567 → Voice Mail" in card.text  # the app dialled, by its name
    assert "Incoming" in card.text and "Complete" in card.text
    duration = console.plays(f"{card_css} audio")
    assert abs(duration - float(recording["audio_length"])) < 0.3  # type: ignore[arg-type]
    # The download is the recording's WAV, through its signed link (no token needed).
    href = str(find(driver, f"{card_css} a[download]").get_attribute("href"))
    assert href.startswith(f"{console.server.base_url}/audio/recording/")
    wav = httpx.get(href, timeout=10)
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    assert abs(parse_wav(wav.content).duration - duration) < 0.1
    # The filters: recorded until a day long past, none; a range that ends before it starts,
    # the server's words; from that day on, this one.
    console.pick("input[name=until]", "2020-01-01T00:00")
    find(driver, "button[name=filter]").click()
    by_text(driver, "main", "No recordings match.")
    by_text(driver, "main details summary", "Filters (some recordings are hidden)")
    console.pick("input[name=since]", "2020-01-02T00:00")
    find(driver, "button[name=filter]").click()
    refused = by_text(driver, "main .alert.error", "created_date_min")
    assert "must not be after created_date_max" in refused.text
    console.pick("input[name=until]", "")
    find(driver, "button[name=filter]").click()
    find(driver, card_css)
    assert driver.find_elements("css selector", "main .alert.error") == []
    console.pick("input[name=since]", "")
    find(driver, "button[name=filter]").click()
    summaries = "main details > summary"
    console.wait(
        lambda: "Filters" in [e.text for e in driver.find_elements("css selector", summaries)]
    )
    # Delete asks first; cancelled, nothing happens.
    find(driver, f"{card_css} button[name=delete]").click()
    by_text(driver, "dialog button", "Cancel").click()
    assert len(console.api("GET", query)) == 1
    find(driver, f"{card_css} button[name=delete]").click()
    by_text(driver, "dialog button", "Delete").click()
    by_text(driver, "main", "No recordings yet.")
    assert console.api("GET", query) == []
    assert console.page_errors() == []


def test_record_the_calls_of_chosen_numbers_and_people(console: Console) -> None:
    # A number of this account's own: a number belongs to one account of the node.
    phnum = f"+4681{console.account.account_id[-7:]}"
    console.api(
        "POST",
        console.acct("/phonenumbersubscription"),
        json={"phnum": phnum, "connect_to_type": "", "connect_to": ""},
    )
    console.go("#/recordings")
    driver = console.driver
    Select(find(driver, "select[name=call_recording]")).select_by_value("selected")
    find(driver, f"input[name=record_number][value='{phnum}']").click()
    find(driver, f"input[name=record_user][value='{console.account.user_id}']").click()
    find(driver, "button[name=save_recording]").click()
    console.wait(lambda: console.api("GET", console.acct())["call_recording"] == "selected")
    number = console.api("GET", console.acct(f"/phonenumbersubscription/{phnum}"))
    me = console.api("GET", console.acct(f"/user/{console.account.user_id}"))
    assert number["record_calls"] == "yes" and me["record_calls"] == "yes"
    by_text(driver, "details.recording-setting summary", "numbers and people chosen")
    # Back to no recording: the choices of numbers and people stay for another time.
    Select(find(driver, "select[name=call_recording]")).select_by_value("off")
    assert not driver.find_element("css selector", "fieldset.recorded-which").is_displayed()
    find(driver, "button[name=save_recording]").click()
    console.wait(lambda: console.api("GET", console.acct())["call_recording"] == "off")
    assert (
        console.api("GET", console.acct(f"/user/{console.account.user_id}"))["record_calls"]
        == "yes"
    )
    assert console.page_errors() == []


def test_a_wrong_password_shows_as_a_security_event(console: Console) -> None:
    driver = console.driver
    account = console.account
    # Someone types a wrong password for the admin's e-mail, then the admin signs in.
    open_signed_out(driver, console.server)
    sign_in(driver, account.email, "not-the-password")
    find(driver, ".login-form .alert.error")
    sign_in(driver, account.email, account.password)
    by_text(driver, "main h2", "Main menu")
    by_text(driver, "header nav a", "Security").click()
    row = find(driver, "tr[data-kind=failure]")
    assert "Wrong password" in row.text and account.email in row.text
    assert "127.0.0.1" in row.text and "sign-in" in row.text and "did not match" in row.text
    [event] = console.api("GET", console.acct("/security-event"))
    assert event["kind"] == "failure" and event["username"] == account.email
    # Only bans: none yet.
    find(driver, "select[name=kind] option[value=ban]").click()
    console.button("Show").click()
    by_text(driver, "main", "No events match.")
    assert console.page_errors() == []


def test_bans_show_who_from_where_and_until_when(browser: webdriver.Chrome, tmp_path: Path) -> None:
    # A node of its own that bans after two wrong passwords: the shared node's address must
    # stay unbanned for the other tests.
    for server in run_server(base_settings(tmp_path, auth_failures=2)):
        account = server.account("Andersson Dental")
        open_signed_out(browser, server)
        sign_in(browser, account.email, account.password)  # before the guessing starts
        by_text(browser, "main h2", "Main menu")
        for guess in ("summer2026", "winter2026"):
            r = server.client.post(
                "/oauth/token",
                auth=("sonetel-web", "sonetel-web"),
                data={"grant_type": "password", "username": account.email, "password": guess},
            )
            assert r.status_code == 401, r.text
        browser.execute_script("window.location.hash = '#/security'")
        find(browser, "tr[data-kind=ban]")
        rows = browser.find_elements("css selector", "tbody tr")
        bans = [row.text for row in rows if row.get_attribute("data-kind") == "ban"]
        # The newest first: the bans came with the second wrong password.
        kinds = [row.get_attribute("data-kind") for row in rows]
        assert kinds == ["ban", "ban", "failure", "failure"], kinds
        assert any("Address banned" in b and "127.0.0.1" in b for b in bans), bans
        assert any("User name locked" in b and account.email in b for b in bans), bans
        assert all("after 2 wrong passwords, until" in b for b in bans), bans


def test_a_regular_user_sees_no_admin_pages(console: Console) -> None:
    email = f"desk-{console.account.account_id}@example.com"
    console.api(
        "POST",
        console.acct("/user"),
        json={
            "user_fname": "Desk",
            "user_lname": "Clerk",
            "email": email,
            "password": "desk-pass-1",
        },
    )
    driver = console.driver
    open_signed_out(driver, console.server)
    sign_in(driver, email, "desk-pass-1")
    by_text(driver, "main h2", "Main menu")
    nav = console.text("header nav")
    assert "Voicemail" in nav and "Recordings" not in nav and "Security" not in nav
    # A link to them still shows why not, in the server's words.
    for route, title in (("#/recordings", "Call recordings"), ("#/security", "Security")):
        console.go(route)
        by_text(driver, "main h1", title)
        notice = find(driver, "main .alert.info")
        assert "Only the account's admins" in notice.text
        assert "only admin users can do this" in notice.text
    assert console.page_errors() == []
