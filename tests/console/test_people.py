"""Users with their SIP passwords, and phone numbers with where they go."""

from __future__ import annotations

from selenium.webdriver.support.ui import Select

from tests.console.browser import by_text, find
from tests.console.conftest import Console


def _fill(console: Console, name: str, value: str) -> None:
    box = find(console.driver, f"dialog [name={name}]")
    box.clear()
    box.send_keys(value)


def test_add_a_user_with_a_sip_password_and_change_them(console: Console) -> None:
    console.go("#/users")
    driver = console.driver
    find(driver, "button[name=add_user]").click()
    _fill(console, "user_fname", "Anna")
    _fill(console, "user_lname", "Lind")
    _fill(console, "email", f"anna-{console.account.account_id}@example.com")
    _fill(console, "password", "anna-secret")
    find(driver, "dialog button[name=generate]").click()
    sip_password = find(driver, "dialog [name=sip_password]").get_attribute("value")
    assert sip_password and len(sip_password) >= 12
    find(driver, "dialog button[name=dialog_save]").click()
    row = by_text(driver, "tbody tr", "Anna Lind")
    assert "SIP password set" in row.text
    users = console.api("GET", console.acct("/user"))
    anna = next(u for u in users if u["user_fname"] == "Anna")
    assert anna["has_sip_password"] is True and f"sip:{anna['user_id']}@" in row.text
    # A taken extension is refused with the server's words, in the dialog, which stays open.
    admin_ext = next(u for u in users if u["user_id"] == console.account.user_id)["extension"]
    row.find_element("css selector", "button[name=edit]").click()
    _fill(console, "extension", admin_ext)
    find(driver, "dialog button[name=dialog_save]").click()
    refusal = find(driver, "dialog .dialog-problem .alert")
    assert "already" in refusal.text and admin_ext in refusal.text
    _fill(console, "extension", "555")
    _fill(console, "phnum", "+46701112233")
    find(driver, "dialog button[name=dialog_save]").click()
    by_text(driver, "tbody tr", "+46701112233")
    changed = console.api("GET", console.acct(f"/user/{anna['user_id']}"))
    assert changed["extension"] == "555" and changed["phnum"] == "+46701112233"
    row = by_text(driver, "tbody tr", "Anna Lind")
    row.find_element("css selector", "button[name=delete]").click()
    by_text(driver, "dialog button", "Delete").click()
    console.wait(lambda: "Anna Lind" not in console.text("tbody"))
    assert all(u["user_id"] != anna["user_id"] for u in console.api("GET", console.acct("/user")))


def test_a_phone_number_and_where_it_goes(console: Console) -> None:
    console.go("#/numbers")
    driver = console.driver
    menu = console.app_named("Main menu")
    find(driver, "input[name=phnum]").send_keys("+46812345678")
    Select(find(driver, "main select[name=connect_to]")).select_by_value(menu["app_id"])
    console.button("Add the number").click()
    card = by_text(driver, "li.card", "+46812345678")
    assert "Main menu" in card.text
    number = console.api("GET", console.acct("/phonenumbersubscription/+46812345678"))
    assert number["connect_to_type"] == "app" and number["connect_to"]["app_id"] == menu["app_id"]
    card.find_element("css selector", "button[name=change]").click()
    Select(find(driver, "dialog select[name=connect_to_type]")).select_by_value("phnum")
    _fill(console, "connect_to", "+46709998877")
    find(driver, "dialog button[name=dialog_save]").click()
    by_text(driver, "li.card .goes-to", "Number +46709998877")
    number = console.api("GET", console.acct("/phonenumbersubscription/+46812345678"))
    assert number["connect_to_type"] == "phnum" and number["connect_to"] == "+46709998877"
    by_text(driver, "li.card", "+46812345678").find_element(
        "css selector", "button[name=delete]"
    ).click()
    by_text(driver, "dialog button", "Remove").click()
    by_text(driver, "main", "No numbers yet.")
    assert console.api("GET", console.acct("/phonenumbersubscription")) == "No entries found"
