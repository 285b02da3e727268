"""The console is served by the node itself, signs in and out, and shows names as text."""

from __future__ import annotations

import json
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By

from openivr.console import site as console_site
from tests.conftest import RunningServer
from tests.console.browser import by_text, find
from tests.console.conftest import Console, open_signed_out, sign_in


def test_the_console_is_served_with_a_strict_policy(console_server: RunningServer) -> None:
    client = console_server.client
    home = client.get("/", headers={"Accept": "text/html"})
    assert home.status_code == 307 and home.headers["location"] == "/console/"
    for path in ("/console/", "/console", "/console/js/main.js", "/console/console.css"):
        r = client.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "http" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
    page = client.get("/console/").text
    assert "<script>" not in page and "onload" not in page  # no inline script to allow
    js = client.get("/console/js/main.js")
    assert js.headers["content-type"].startswith("text/javascript")
    again = client.get("/console/js/main.js", headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/console/../pyproject.toml").status_code == 404
    assert client.get("/console/nothing.js").status_code == 404


def test_sign_in_shows_the_apps_and_sign_out_forgets_the_token(console: Console) -> None:
    driver = console.driver
    assert "Main menu" in console.text() and "Voice Mail" in console.text()
    stored = driver.execute_script("return sessionStorage.getItem('openivr.console.session')")
    token = json.loads(stored)["token"]
    assert token not in driver.current_url
    assert not driver.execute_script("return document.cookie")
    # A reload keeps the session (same tab); the token never shows in the address bar.
    driver.refresh()
    by_text(driver, "main h2", "Main menu")
    find(driver, "button.sign-out").click()
    find(driver, "input[name=email]")
    assert "signed out" in console.text("main.login")
    assert driver.execute_script("return sessionStorage.length") == 0
    driver.refresh()
    find(driver, "input[name=email]")
    assert not driver.find_elements(By.CSS_SELECTOR, "header.top")
    # The token the page had is no longer kept anywhere in it; the API still refuses nothing
    # about signing out (tokens are stateless) but the page cannot use it any more.
    assert token not in driver.page_source
    assert console.page_errors() == []


def test_a_wrong_password_is_told_and_nothing_is_kept(
    browser: webdriver.Chrome, console_server: RunningServer
) -> None:
    account = console_server.account()
    open_signed_out(browser, console_server)
    sign_in(browser, account.email, "not-the-password")
    alert = find(browser, "main.login [role=alert]")
    assert "do not match" in alert.text
    assert browser.execute_script("return sessionStorage.length") == 0


def test_the_session_ends_when_the_token_would(console: Console) -> None:
    driver = console.driver
    # The same session, but its token's exp two seconds from now: the page signs out then.
    driver.execute_script(
        """const key = 'openivr.console.session';
        const s = JSON.parse(sessionStorage.getItem(key));
        s.exp = Math.floor(Date.now() / 1000) + 2;
        sessionStorage.setItem(key, JSON.stringify(s));"""
    )
    driver.refresh()
    by_text(driver, "main h2", "Main menu")
    alert = find(driver, "main.login .alert", timeout=10)
    assert "session has ended" in alert.text
    assert driver.execute_script("return sessionStorage.length") == 0


def test_a_revoked_token_ends_the_session(console: Console) -> None:
    # A new password revokes every token: the next API call answers 401 and the page signs out.
    console.api(
        "PUT", console.acct(f"/user/{console.account.user_id}"), json={"password": "n3w-pass"}
    )
    console.driver.refresh()
    alert = find(console.driver, "main.login .alert")
    assert "session has ended" in alert.text


def test_names_show_as_text_never_as_markup(console: Console) -> None:
    hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    app = console.api("POST", console.acct("/voiceapp"), json={"app_type": "ivr", "name": hostile})
    user = console.api(
        "POST",
        console.acct("/user"),
        json={
            "user_fname": hostile,
            "email": f"x-{console.account.account_id}@example.com",
            "password": "pass-word-1",
        },
    )
    menu = console.app_named("Main menu")["app_id"]
    console.api(
        "PUT",
        console.acct(f"/voiceapp/{menu}"),
        json={"menu": {"digit_2": {"action": "call", "to": "user", "id": user["user_id"]}}},
    )
    console.api("POST", console.acct(f"/voiceapp/{menu}/prompt"), json={"name": hostile})
    console.driver.refresh()
    title = by_text(console.driver, "main h2", "<img src=x")
    assert title.text == hostile
    # The same names in the editor's pickers and flow, the messages, the users and a call.
    pages = {
        f"#/apps/{menu}": ".flow svg",
        f"#/apps/{menu}/prompts": "li.card.prompt",
        "#/users": "tbody tr",
        f"#/try/{app['app_id']}": "select[name=app]",
    }
    for route, ready in pages.items():
        console.go(route)
        find(console.driver, ready)
        assert "<img src=x" in console.text("main"), route
        assert console.driver.execute_script("return window.pwned === undefined"), route
        assert not console.driver.find_elements(By.CSS_SELECTOR, "img[src=x], main script")


def test_first_view_is_small_and_local(console: Console) -> None:
    driver = console.driver
    driver.refresh()
    by_text(driver, "main h2", "Main menu")
    time.sleep(0.3)
    entries = driver.execute_script(
        "return performance.getEntries().filter(e => e.entryType === 'navigation' "
        "|| e.entryType === 'resource').map(e => [e.name, e.transferSize || e.encodedBodySize || 0])"
    )
    origin = console.server.base_url
    assert all(name.startswith(origin) for name, _size in entries), entries
    total = sum(size for _name, size in entries)
    assert 0 < total < 200_000, total


def test_create_rename_and_delete_an_app_in_use(console: Console) -> None:
    driver = console.driver
    find(driver, "input[name=name]").send_keys("Holiday line")
    console.button("Create").click()
    find(driver, "form.app-form")  # the new app opens in the editor
    console.wait(
        lambda: any(
            a["name"] == "Holiday line" for a in console.api("GET", console.acct("/voiceapp"))
        )
    )
    console.go("#/apps")
    card = by_text(driver, "li.card", "Holiday line")
    card.find_element(By.XPATH, ".//button[contains(., 'Rename')]").click()
    box = find(driver, "dialog input")
    box.clear()
    box.send_keys("Christmas line\n")
    by_text(driver, "main h2", "Christmas line")
    assert console.app_named("Christmas line")["app_type"] == "ivr"
    # The Voice Mail box is what Main menu's 1 connects to: the 409 is shown, then forced.
    card = by_text(driver, "li.card", "Voice Mail")
    card.find_element(By.XPATH, ".//button[contains(., 'Delete')]").click()
    by_text(driver, "dialog button", "Delete").click()
    warning = find(driver, "dialog .alert.warn")
    assert "still used by" in warning.text and "Main menu" in warning.text
    by_text(driver, "dialog button", "Delete anyway").click()
    console.wait(lambda: "Voice Mail" not in console.text("main ul.cards"))
    names = [a["name"] for a in console.api("GET", console.acct("/voiceapp"))]
    assert "Voice Mail" not in names
    menu = console.app_named("Main menu")
    assert menu["menu"]["digit_1"]["action"] == ""


UNLABELLED = """
return [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => el.type !== 'hidden' && el.getClientRects().length > 0)
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
    && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 120));
"""


def test_every_page_labels_its_controls_and_fits_a_phone(console: Console) -> None:
    driver = console.driver
    menu = console.app_named("Main menu")["app_id"]
    box = console.app_named("Voice Mail")["app_id"]
    pages = {
        "#/apps": "main h2",
        f"#/apps/{menu}": ".flow svg",
        f"#/apps/{box}": "select[name=deliver_to]",
        f"#/apps/{menu}/prompts": "li.card.prompt",
        f"#/try/{menu}": "input[name=keys]",
        f"#/voicemail/{box}": "main h1",
        "#/calls": "main details.panel",
        "#/users": "tbody tr",
        "#/numbers": "input[name=phnum]",
        "#/teams": "button[name=add_team]",
        "#/schedules": "button[name=add_schedule]",
        "#/recordings": "main h1",
        "#/security": "select[name=kind]",
    }
    try:
        for width in (1280, 360):
            driver.set_window_size(width, 800)
            for route, ready in pages.items():
                console.go(route)
                find(driver, ready)
                assert driver.execute_script(UNLABELLED) == [], route
                overflow = driver.execute_script(
                    "return document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 0, f"{route} is {overflow}px wider than {width}px"
    finally:
        driver.set_window_size(1280, 900)
    assert console.page_errors() == []


def test_an_admins_navigation_keeps_to_one_line_on_a_desktop(console: Console) -> None:
    driver = console.driver
    assert by_text(driver, "header nav a", "Recordings") and by_text(
        driver, "header nav a", "Security"
    )
    try:
        for width in (1181, 1280, 1480):
            driver.set_window_size(width, 800)
            tops = driver.execute_script(
                "return [...document.querySelectorAll('#nav-list a')]"
                ".map((a) => Math.round(a.getBoundingClientRect().top))"
            )
            assert len(tops) == 10 and len(set(tops)) == 1, (width, tops)
    finally:
        driver.set_window_size(1280, 900)


def test_keyboard_alone_signs_in_and_reaches_a_page(
    browser: webdriver.Chrome, console_server: RunningServer
) -> None:
    from selenium.webdriver.common.keys import Keys

    account = console_server.account()
    open_signed_out(browser, console_server)
    # The e-mail field has the focus; Tab to the password, Enter submits.
    browser.switch_to.active_element.send_keys(
        account.email, Keys.TAB, account.password, Keys.ENTER
    )
    by_text(browser, "main h2", "Main menu")
    link = by_text(browser, "header nav a", "Users")
    link.send_keys(Keys.ENTER)
    find(browser, "tbody tr")
    assert browser.switch_to.active_element.get_attribute("id") == "main"


def test_no_page_builds_markup_from_strings() -> None:
    # Every page builds its DOM with textContent (dom.js `h`); HTML parsing of strings is
    # how a name like "<img onerror>" would run, so none of these may appear at all.
    static = Path(console_site.__file__).parent / "static"
    scripts = list(static.rglob("*.js"))
    assert len(scripts) > 10
    for script in scripts:
        text = script.read_text()
        for sink in ("innerHTML", "outerHTML =", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{script.name} uses {sink}"
