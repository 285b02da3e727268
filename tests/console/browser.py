"""A headless Chromium driven through Debian's chromedriver, for the console's tests and
screenshots. Debian's `chromium` and `chromium-driver` packages (installed by `.ci/run`)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DESKTOP = (1280, 900)
PHONE = (360, 780)


@contextmanager
def chromium(width: int = DESKTOP[0], height: int = DESKTOP[1]) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium with its own profile, closed afterwards."""
    profile = tempfile.mkdtemp(prefix="openivr-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)


def wait_for(
    driver: webdriver.Chrome, predicate: Callable[[webdriver.Chrome], Any], timeout: float = 30
) -> Any:
    """Poll the page until predicate(driver) is truthy (stale elements retry); its value."""
    return WebDriverWait(
        driver, timeout, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
    ).until(predicate)


def find(driver: webdriver.Chrome, css: str, timeout: float = 30) -> WebElement:
    """The first visible element matching a CSS selector, once there is one."""

    def visible(d: webdriver.Chrome) -> WebElement | None:
        for el in d.find_elements(By.CSS_SELECTOR, css):
            if el.is_displayed():
                return el
        return None

    found: WebElement = wait_for(driver, visible, timeout)
    return found


def by_text(driver: webdriver.Chrome, css: str, text: str, timeout: float = 30) -> WebElement:
    """The first visible element matching `css` whose text contains `text`."""

    def match(d: webdriver.Chrome) -> WebElement | None:
        for el in d.find_elements(By.CSS_SELECTOR, css):
            if text in el.text and el.is_displayed():
                return el
        return None

    found: WebElement = wait_for(driver, match, timeout)
    return found


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """Errors the page logged (CSP violations, script errors) since the last call."""
    try:
        entries = driver.get_log("browser")
    except WebDriverException:
        return []
    return [e["message"] for e in entries if e.get("level") == "SEVERE"]
