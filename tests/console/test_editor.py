"""The voice-app editor: keys, the flow and problems as the user edits, saving with If-Match."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.console.browser import by_text, find
from tests.console.conftest import Console


def _open_editor(console: Console, name: str) -> str:
    app_id: str = console.app_named(name)["app_id"]
    console.go(f"#/apps/{app_id}")
    find(console.driver, "form.app-form")
    return app_id


def _new_user(console: Console, first: str, **extra: str) -> str:
    user = console.api(
        "POST",
        console.acct("/user"),
        json={
            "user_fname": first,
            "user_lname": "Berg",
            "email": f"{first.lower()}-{console.account.account_id}@example.com",
            "password": "pass-word-1",
            **extra,
        },
    )
    return str(user["user_id"])


def test_change_digit_2_to_a_person_and_see_it_in_the_api(console: Console) -> None:
    anna = _new_user(console, "Anna")
    app_id = _open_editor(console, "Main menu")
    driver = console.driver
    Select(find(driver, "select[name=digit_2-kind]")).select_by_value("user")
    Select(find(driver, "select[name=digit_2-target]")).select_by_value(anna)
    # The flow and the problems follow the edit before it is saved: Anna has no phone yet.
    by_text(driver, ".flow svg", "Anna Berg")
    problem = find(driver, ".problems li[data-field='menu.digit_2']")
    assert "Key 2" in problem.text
    assert (
        console.api("GET", console.acct(f"/voiceapp/{app_id}"))["menu"]["digit_2"]["action"] == ""
    )
    assert "not saved" in console.text(".savebar .state")
    find(driver, "button[name=save]").click()
    by_text(driver, ".savebar .state", "All changes saved")
    saved = console.api("GET", console.acct(f"/voiceapp/{app_id}"))
    assert saved["menu"]["digit_2"] == {"action": "call", "to": "user", "id": anna}
    assert saved["menu"]["digit_1"]["action"] == "connect"  # untouched keys kept
    assert console.page_errors() == []


def test_a_conflicting_save_is_shown_and_never_overwrites(console: Console) -> None:
    app_id = _open_editor(console, "Main menu")
    driver = console.driver
    # Someone else renames the menu after this page loaded it.
    console.api("PUT", console.acct(f"/voiceapp/{app_id}"), json={"name": "Their menu"})
    Select(find(driver, "select[name=digit_3-kind]")).select_by_value("hangup")
    find(driver, "button[name=save]").click()
    alert = find(driver, ".conflict .alert")
    assert "Someone else saved" in alert.text
    saved = console.api("GET", console.acct(f"/voiceapp/{app_id}"))
    assert saved["name"] == "Their menu" and saved["menu"]["digit_3"]["action"] == ""
    find(driver, "button[name=reload]").click()
    console.wait(lambda: find(driver, "input[name=name]").get_attribute("value") == "Their menu")
    assert not driver.find_elements(By.CSS_SELECTOR, ".conflict .alert")
    assert (
        Select(find(driver, "select[name=digit_3-kind]")).first_selected_option.get_attribute(
            "value"
        )
        == ""
    )


def test_saving_mine_over_theirs_is_a_choice(console: Console) -> None:
    app_id = _open_editor(console, "Main menu")
    driver = console.driver
    console.api("PUT", console.acct(f"/voiceapp/{app_id}"), json={"max_retries": 7})
    Select(find(driver, "select[name=digit_9-kind]")).select_by_value("repeat")
    find(driver, "button[name=save]").click()
    find(driver, "button[name=overwrite]").click()
    by_text(driver, ".savebar .state", "All changes saved")
    saved = console.api("GET", console.acct(f"/voiceapp/{app_id}"))
    assert saved["menu"]["digit_9"]["action"] == "repeat"


def test_the_servers_refusal_names_the_field(console: Console) -> None:
    app_id = _open_editor(console, "Main menu")
    driver = console.driver
    Select(find(driver, "select[name=digit_4-kind]")).select_by_value("phnum")
    find(driver, "input[name=digit_4-target]").send_keys("0701234")
    by_text(driver, ".problems-box", "menu.digit_4.id")
    find(driver, "button[name=save]").click()
    refusal = find(driver, ".form-problem .alert")
    assert "Not saved" in refusal.text and "menu.digit_4.id" in refusal.text
    assert console.api("GET", console.acct(f"/voiceapp/{app_id}"))["menu"]["digit_4"]["id"] == ""
    box = find(driver, "input[name=digit_4-target]")
    box.clear()
    box.send_keys("+46701234567")
    find(driver, "button[name=save]").click()
    by_text(driver, ".savebar .state", "All changes saved")
    saved = console.api("GET", console.acct(f"/voiceapp/{app_id}"))["menu"]["digit_4"]
    assert saved == {"action": "call", "to": "phnum", "id": "+46701234567"}


def test_an_announcement_and_a_mailbox(console: Console) -> None:
    app_id = _open_editor(console, "Main menu")
    driver = console.driver
    find(driver, "input[name=play_menu]").click()
    assert not find(driver, "select[name=final_action-kind]").get_attribute("hidden")
    box = console.app_named("Voice Mail")["app_id"]
    Select(find(driver, "select[name=final_action-kind]")).select_by_value("app")
    Select(find(driver, "select[name=final_action-target]")).select_by_value(box)
    find(driver, "button[name=save]").click()
    by_text(driver, ".savebar .state", "All changes saved")
    saved = console.api("GET", console.acct(f"/voiceapp/{app_id}"))
    assert saved["play_menu"] == "no"
    assert saved["final_action"] == {"action": "connect", "to": "app", "id": box}
    _open_editor(console, "Voice Mail")
    Select(find(driver, "select[name=deliver_to]")).select_by_value("email")
    find(driver, "input[name=deliver_email]").send_keys("desk@example.com")
    find(driver, "button[name=save]").click()
    by_text(driver, ".savebar .state", "All changes saved")
    mailbox = console.api("GET", console.acct(f"/voiceapp/{box}"))
    assert mailbox["deliver_to"] == "email" and mailbox["deliver_to_details"] == "desk@example.com"


def test_teams_and_opening_hours_in_the_menu(console: Console) -> None:
    anna = _new_user(console, "Anna")
    driver = console.driver
    assert by_text(driver, "header nav a", "Teams") and by_text(driver, "header nav a", "Opening")
    console.go("#/teams")
    find(driver, "button[name=add_team]").click()
    find(driver, "dialog [name=team_name]").send_keys("Sales")
    Select(find(driver, "dialog select[name=strategy]")).select_by_value("order")
    Select(find(driver, "dialog select[name=add_member]")).select_by_value(anna)
    Select(find(driver, "dialog select[name=add_member]")).select_by_value(console.account.user_id)
    find(driver, "dialog button[name=dialog_save]").click()
    card = by_text(driver, "li.card", "Sales")
    assert "Anna Berg" in card.text
    team = console.api("GET", console.acct("/team"))[0]
    assert team["members"] == [anna, console.account.user_id] and team["strategy"] == "order"
    console.go("#/schedules")
    find(driver, "button[name=add_schedule]").click()
    find(driver, "dialog [name=schedule_name]").send_keys("Office hours")
    find(driver, "dialog [name=timezone]").send_keys("Europe/Stockholm")
    find(driver, "dialog button[name=add_special]").click()
    driver.execute_script(  # a date picker's value, as picking Christmas Eve sets it
        "arguments[0].value = '2026-12-24';"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}))",
        find(driver, "dialog [name=special_first]"),
    )
    find(driver, "dialog button[name=dialog_save]").click()
    by_text(driver, "li.card", "Office hours")
    schedule = console.api("GET", console.acct("/schedule"))[0]
    assert schedule["weekly"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}
    ]
    assert schedule["closed_dates"] == ["2026-12-24"]
    app_id = _open_editor(console, "Main menu")
    Select(find(driver, "select[name=digit_3-kind]")).select_by_value("csg")
    Select(find(driver, "select[name=digit_3-target]")).select_by_value(team["team_id"])
    Select(find(driver, "select[name=schedule_id]")).select_by_value(schedule["schedule_id"])
    box = console.app_named("Voice Mail")["app_id"]
    Select(find(driver, "select[name=closed_action-kind]")).select_by_value("app")
    Select(find(driver, "select[name=closed_action-target]")).select_by_value(box)
    find(driver, "button[name=save]").click()
    by_text(driver, ".savebar .state", "All changes saved")
    saved = console.api("GET", console.acct(f"/voiceapp/{app_id}"))
    assert saved["menu"]["digit_3"] == {"action": "call", "to": "csg", "id": team["team_id"]}
    assert saved["open_hours"] == {
        "schedule_id": schedule["schedule_id"],
        "closed_action": {"action": "connect", "to": "app", "id": box},
    }


def test_a_conflicting_team_save_offers_their_version(console: Console) -> None:
    team = console.api(
        "POST", console.acct("/team"), json={"name": "Sales", "members": [console.account.user_id]}
    )
    driver = console.driver
    console.go("#/teams")
    by_text(driver, "li.card", "Sales").find_element("css selector", "button[name=edit]").click()
    name = find(driver, "dialog [name=team_name]")
    name.clear()
    name.send_keys("Sales Nordic")
    # Someone else renames it meanwhile.
    path = console.acct(f"/team/{team['team_id']}")
    console.api("PUT", path, json={"name": "Sales Europe"})
    find(driver, "dialog button[name=dialog_save]").click()
    conflict = find(driver, "dialog .dialog-problem .alert")
    assert "Someone else changed this team" in conflict.text
    assert console.api("GET", path)["name"] == "Sales Europe"
    conflict.find_element("css selector", "button[name=reload]").click()
    console.wait(
        lambda: (
            find(driver, "dialog[open] [name=team_name]").get_attribute("value") == "Sales Europe"
        )
    )


def test_leaving_with_unsaved_changes_asks_first(console: Console) -> None:
    app_id = _open_editor(console, "Main menu")
    driver = console.driver
    Select(find(driver, "select[name=digit_5-kind]")).select_by_value("hangup")
    by_text(driver, "header nav a", "Users").click()
    alert = console.wait(lambda: driver.switch_to.alert)
    assert "not saved" in alert.text
    alert.dismiss()  # stay
    assert find(driver, "select[name=digit_5-kind]").get_attribute("value") == "hangup"
    assert app_id in driver.current_url
    find(driver, "button[name=undo]").click()
    console.wait(lambda: find(driver, "select[name=digit_5-kind]").get_attribute("value") == "")
    by_text(driver, "header nav a", "Users").click()
    find(driver, "tbody tr")  # no question once nothing is unsaved


def test_the_flow_and_problems_show_teams_and_opening_hours(console: Console) -> None:
    anna = _new_user(console, "Anna", sip_uri="sip:anna@127.0.0.1:5099")
    bob = _new_user(console, "Bob")  # no phone, no address: a member nobody can reach
    box = console.app_named("Voice Mail")["app_id"]
    team = console.api(
        "POST",
        console.acct("/team"),
        json={
            "name": "Sales",
            "members": [anna, bob],
            "strategy": "order",
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
    _open_editor(console, "Main menu")
    driver = console.driver
    # The drawing: the team, its members in ringing order, and the closed branch on a dashed
    # line of its own beside the open branch's keys.
    by_text(driver, ".flow svg g.node.team", "Sales")
    drawn = console.text(".flow svg")
    assert "Anna Berg" in drawn and "Bob Berg" in drawn
    labels = [
        el.get_attribute("textContent")
        for el in driver.find_elements(By.CSS_SELECTOR, ".flow svg g.edge > text")
    ]
    assert {"#1", "#2", "no answer", "3", "1"} <= set(labels), labels
    closed = driver.find_elements(By.CSS_SELECTOR, ".flow svg .edge-line.closed")
    assert len(closed) == 1
    assert [
        el.get_attribute("textContent")
        for el in driver.find_elements(By.CSS_SELECTOR, ".flow svg g.edge.closed title")
    ] == ["closed (Office hours)"]
    assert "open (Office hours)" in console.text(".flow-legend")
    words = [
        el.get_attribute("textContent")
        for el in driver.find_elements(By.CSS_SELECTOR, ".flow-list li")
    ]
    assert "Main menu (menu): when closed (Office hours) → Voice Mail (mailbox)" in words
    assert "Main menu (menu): when open, press 3 → team Sales (order)" in words
    assert any(w.startswith("team Sales (order): #1 → user Anna Berg") for w in words), words
    assert any(w.startswith("team Sales (order): #2 → user Bob Berg") for w in words), words
    assert "team Sales (order): no answer → Voice Mail (mailbox)" in words
    # The problems: Bob cannot be rung, named with his team under the key that rings it.
    problem = find(driver, ".problems li[data-field='menu.digit_3']")
    assert "Key 3" in problem.text and "Bob Berg" in problem.text and "'Sales'" in problem.text
    # Taking the closed action away on screen redraws the closed branch before saving, and the
    # problems say what callers then get outside opening hours.
    Select(find(driver, "select[name=closed_action-kind]")).select_by_value("")
    console.wait(
        lambda: (
            "Main menu (menu): when closed (Office hours) → hang up"
            in [
                el.get_attribute("textContent")
                for el in driver.find_elements(By.CSS_SELECTOR, ".flow-list li")
            ]
        )
    )
    hours_problem = find(driver, ".problems li[data-field='open_hours.closed_action']")
    assert "Opening hours" in hours_problem.text and "we are closed" in hours_problem.text
    # Always open again: no closed branch, no legend.
    Select(find(driver, "select[name=schedule_id]")).select_by_value("")
    console.wait(lambda: not driver.find_elements(By.CSS_SELECTOR, ".flow svg .edge-line.closed"))
    assert not driver.find_elements(By.CSS_SELECTOR, ".flow-legend")
    assert console.page_errors() == []
