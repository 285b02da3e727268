"""Browser fixtures: one OpenIVR node (SIP on) and one headless Chromium per test worker,
reused by every test; each test signs in to an account of its own."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.calls.conftest import free_udp_port, rtp_range, run_sipp
from tests.conftest import Account, RunningServer, base_settings, require_binary, run_server
from tests.console.browser import by_text, chromium, console_errors, find, wait_for


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A node with SIP on a free port, shared by this worker's console tests."""
    tmp = tmp_path_factory.mktemp("console-node")
    settings = base_settings(tmp, sip_port=free_udp_port(), rtp_ports=rtp_range())
    yield from run_server(settings)


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for this worker (Debian's chromium + chromium-driver)."""
    require_binary("chromium")
    require_binary("chromedriver")
    with chromium() as driver:
        yield driver


@dataclass
class Console:
    """The console open in the browser, signed in to a fresh account."""

    driver: webdriver.Chrome
    server: RunningServer
    account: Account

    @property
    def url(self) -> str:
        return self.server.base_url + "/console/"

    def go(self, route: str) -> None:
        """Open a page of the console by its #/route, as following a link does."""
        self.driver.execute_script("window.location.hash = arguments[0]", route)

    def find(self, css: str, timeout: float = 30) -> WebElement:
        return find(self.driver, css, timeout)

    def button(self, text: str, within: str = "main", timeout: float = 30) -> WebElement:
        """A visible button or link-button whose text contains `text`."""
        return by_text(
            self.driver, f"{within} button, {within} a.button, {within} a", text, timeout
        )

    def wait(self, predicate: Any, timeout: float = 30) -> Any:
        return wait_for(self.driver, lambda _d: predicate(), timeout)

    def text(self, css: str = "main") -> str:
        return str(self.find(css).text)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """The API as a script sees it (the truth the console must show)."""
        r = self.server.client.request(method, path, headers=self.account.headers, **kwargs)
        assert r.is_success, r.text
        return r.json()["response"]

    def acct(self, suffix: str = "") -> str:
        return f"/account/{self.account.account_id}{suffix}"

    def app_named(self, name: str) -> dict[str, Any]:
        apps: list[dict[str, Any]] = self.api("GET", self.acct("/voiceapp"))
        return next(a for a in apps if a["name"] == name)

    def pick(self, css: str, value: str) -> None:
        """Set a date or time picker's value, as a person picking one does."""
        self.driver.execute_script(
            "arguments[0].value = arguments[1];"
            "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
            self.find(css),
            value,
        )

    def drop_file(self, css: str, name: str, data: bytes) -> None:
        """Drag a file from the desktop and drop it on an element (real DOM drag events)."""
        self.driver.execute_script(
            """const [b64, name, css] = arguments;
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: 'audio/wav' }));
            const target = document.querySelector(css);
            for (const type of ['dragenter', 'dragover', 'drop']) {
              target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
            }""",
            base64.b64encode(data).decode(),
            name,
            css,
        )

    def plays(self, css: str, timeout: float = 30) -> float:
        """Start an <audio> element and wait until it has really played; its duration."""
        self.driver.execute_script("document.querySelector(arguments[0]).play()", css)
        self.wait(
            lambda: self.driver.execute_script(
                "const a = document.querySelector(arguments[0]); return !a.error && a.currentTime > 0.2",
                css,
            ),
            timeout,
        )
        return float(
            self.driver.execute_script("return document.querySelector(arguments[0]).duration", css)
        )

    def leave_voicemail(self, tmp_path: Path, audio_ms: str = "3000") -> str:
        """A SIPp caller speaks into the Voice Mail box from the beep on (no greeting), as a
        person leaving a message does; the box's id."""
        box = str(self.app_named("Voice Mail")["app_id"])
        self.api(
            "PUT",
            self.acct(f"/voiceapp/{box}"),
            json={"greeting_prompt": "no", "goodbye_prompt": "no"},
        )
        values = {"audio_ms": audio_ms, "bye_timeout": "8000"}
        run_sipp(self.server, "mailbox_message.xml", tmp_path, box, values=values)
        return box

    def page_errors(self) -> list[str]:
        """Script errors and CSP violations the page logged (failed API calls aside)."""
        return [
            e
            for e in console_errors(self.driver)
            if "Failed to load resource" not in e or "Content Security Policy" in e
        ]


def open_signed_out(driver: webdriver.Chrome, server: RunningServer) -> None:
    """The console with no session: the sign-in form."""
    driver.get(server.base_url + "/console/")
    driver.execute_script("sessionStorage.clear()")
    driver.get(server.base_url + "/console/")
    find(driver, "input[name=email]")


def sign_in(driver: webdriver.Chrome, email: str, password: str) -> None:
    """Type the e-mail and password into the form and submit it."""
    email_box = find(driver, "input[name=email]")
    email_box.clear()
    email_box.send_keys(email)
    password_box = driver.find_element(By.CSS_SELECTOR, "input[name=password]")
    password_box.clear()
    password_box.send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form.login-form button[type=submit]").click()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test, so a fixture can tell that the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def console(
    browser: webdriver.Chrome,
    console_server: RunningServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Console]:
    """The console signed in to a fresh account, on its list of voice apps."""
    account = console_server.account("Andersson Dental")
    open_signed_out(browser, console_server)
    console_errors(browser)  # start each test with an empty log
    sign_in(browser, account.email, account.password)
    page = Console(browser, console_server, account)
    by_text(browser, "main h2", "Main menu")
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        # What the page showed when the test failed, beside the test's other files.
        shot = tmp_path / "failed.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot of the failed page: {shot}")
        print("page text:", browser.find_element(By.TAG_NAME, "body").text[:3000])
