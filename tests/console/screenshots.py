"""Screenshots of the console's main pages at desktop and phone width, for docs/console/.

    python -m tests.console.screenshots      (or: make screenshots)

Starts a node in this process (SIP on a free port), fills a demo account through the API as
a receptionist would have it (people, a team, opening hours, a typed greeting, a number, a
voicemail left by a SIPp call when SIPp is installed) and photographs each page in Debian's
headless Chromium.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver

from tests.calls.conftest import free_udp_port, rtp_range, run_sipp
from tests.conftest import Account, RunningServer, base_settings, run_server
from tests.console.browser import DESKTOP, PHONE, by_text, chromium, find
from tests.console.conftest import open_signed_out, sign_in

OUT = Path(__file__).resolve().parents[2] / "docs" / "console"
MAX_HEIGHT = 2200


class Demo:
    """A demo account filled through the API."""

    def __init__(self, server: RunningServer, account: Account):
        self.server = server
        self.account = account

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self.server.client.request(method, path, headers=self.account.headers, **kwargs)
        assert r.is_success, r.text
        return r.json()["response"]

    def acct(self, suffix: str = "") -> str:
        return f"/account/{self.account.account_id}{suffix}"


def fill(server: RunningServer, tmp: Path) -> Demo:
    """The demo account: Andersson Dental's phone line."""
    demo = Demo(server, server.account("Andersson Dental"))
    apps = {a["name"]: a for a in demo.api("GET", demo.acct("/voiceapp"))}
    menu, box = apps["Main menu"]["app_id"], apps["Voice Mail"]["app_id"]
    people = {}
    for first, last, ext, phone in (
        ("Anna", "Lind", "101", "+46701112233"),
        ("Erik", "Berg", "102", ""),
        ("Sara", "Holm", "103", "+46704445566"),
    ):
        user = demo.api(
            "POST",
            demo.acct("/user"),
            json={
                "user_fname": first,
                "user_lname": last,
                "email": f"{first.lower()}@andersson-dental.example",
                "password": "demo-password",
                "extension": ext,
                "phnum": phone,
                "sip_uri": "" if phone else f"sip:{first.lower()}@pbx.andersson-dental.example",
            },
        )
        if first == "Erik":  # his desk phone registers to OpenIVR
            demo.api(
                "PUT",
                demo.acct(f"/user/{user['user_id']}"),
                json={"sip_password": "demo-sip-secret"},
            )
        people[first] = user["user_id"]
    reception = demo.api(
        "POST",
        demo.acct("/team"),
        json={
            "name": "Reception",
            "members": [people["Anna"], people["Sara"]],
            "strategy": "order",
            "no_answer": {"action": "connect", "to": "app", "id": box},
        },
    )
    hours = demo.api(
        "POST",
        demo.acct("/schedule"),
        json={
            "name": "Clinic hours",
            "timezone": "Europe/Stockholm",
            "weekly": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "17:00"}
            ],
            "closed_dates": ["2026-12-24", "2026-12-25", "2026-12-26"],
            "special": [{"date": "2026-12-31", "from": "08:00", "to": "13:00"}],
        },
    )
    demo.api(
        "PUT",
        demo.acct(f"/voiceapp/{menu}"),
        json={
            "menu": {
                "digit_1": {"action": "call", "to": "user", "id": people["Sara"]},
                "digit_2": {"action": "call", "to": "user", "id": people["Erik"]},
                "digit_3": {"action": "connect", "to": "app", "id": box},
                "digit_0": {"action": "call", "to": "csg", "id": reception["team_id"]},
            },
            "open_hours": {
                "schedule_id": hours["schedule_id"],
                "closed_action": {"action": "connect", "to": "app", "id": box},
            },
        },
    )
    prompts = {p["key"]: p for p in demo.api("GET", demo.acct(f"/voiceapp/{menu}/prompt"))}
    demo.api(
        "POST",
        demo.acct(f"/voiceapp/{menu}/prompt/{prompts['welcome']['prompt_id']}/message"),
        json={"text": "Welcome to Andersson Dental.", "voice": "en-uk-fe"},
    )
    demo.api("POST", demo.acct(f"/voiceapp/{menu}/prompt"), json={"name": "Holiday greeting"})
    demo.api(
        "POST",
        demo.acct("/phonenumbersubscription"),
        json={
            "phnum": "+46812345678",
            "connect_to_type": "app",
            "connect_to": {"app_type": "ivr", "app_id": menu},
        },
    )
    demo.api(
        "POST",
        demo.acct("/phonenumbersubscription"),
        json={"phnum": "+46812345679", "connect_to_type": "user", "connect_to": people["Erik"]},
    )
    # Someone guesses at the reception's sign-in: a wrong password, a security event.
    wrong = server.client.post(
        "/oauth/token",
        auth=("sonetel-web", "sonetel-web"),
        data={"grant_type": "password", "username": "anna@andersson-dental.example",
              "password": "summer2026", "refresh": "no"},
    )  # fmt: skip
    assert wrong.status_code == 401, wrong.text
    if shutil.which("sipp"):
        # The voicemails' calls are recorded, too.
        demo.api("PUT", demo.acct(), json={"call_recording": "inbound"})
        demo.api(
            "PUT",
            demo.acct(f"/voiceapp/{box}"),
            json={"greeting_prompt": "no", "goodbye_prompt": "no"},
        )
        for seconds in ("4000", "2500"):
            run_sipp(
                server,
                "mailbox_message.xml",
                tmp,
                box,
                values={"audio_ms": seconds, "bye_timeout": "8000"},
            )
        demo.api(
            "PUT",
            demo.acct(f"/voiceapp/{box}"),
            json={"greeting_prompt": "yes", "goodbye_prompt": "yes"},
        )
        deadline = time.time() + 15
        while time.time() < deadline and (
            len([c for c in demo.api("GET", demo.acct("/call")) if c["end_time"]]) < 2
        ):
            time.sleep(0.2)
    return demo


def photograph(driver: webdriver.Chrome, path: Path, width: int) -> None:
    """The whole page (up to MAX_HEIGHT) at this width."""
    time.sleep(0.4)  # let transitions and fonts settle
    height = driver.execute_script(
        "const d = document.querySelector('dialog[open]');"
        "if (d) d.style.maxHeight = 'none';"  # the whole dialog, not its scrolled part
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight,"
        " d ? d.getBoundingClientRect().height + 60 : 0)"
    )
    # The window's own frame is not page: add it, so the viewport shows the whole page.
    frame = driver.execute_script("return window.outerHeight - window.innerHeight")
    driver.set_window_size(width, min(max(int(height), 640), MAX_HEIGHT) + int(frame))
    time.sleep(0.2)
    driver.save_screenshot(str(path))


def pages(demo: Demo) -> list[tuple[str, Callable[[webdriver.Chrome], None]]]:
    """(name, how to get there) for every page photographed."""
    apps = {a["name"]: a["app_id"] for a in demo.api("GET", demo.acct("/voiceapp"))}
    menu, box = apps["Main menu"], apps["Voice Mail"]

    def go(route: str, wait_css: str, text: str = "") -> Callable[[webdriver.Chrome], None]:
        def open_page(driver: webdriver.Chrome) -> None:
            driver.execute_script("window.location.hash = arguments[0]", route)
            if text:
                by_text(driver, wait_css, text)
            else:
                find(driver, wait_css)

        return open_page

    def try_call(driver: webdriver.Chrome) -> None:
        go(f"#/try/{menu}", "input[name=keys]")(driver)
        # A Tuesday morning, in opening hours whenever the pictures are taken.
        driver.execute_script(
            "arguments[0].value = '2026-12-01T10:00';"
            "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
            find(driver, "input[name=at]"),
        )
        find(driver, "input[name=keys]").send_keys("3")
        find(driver, "button[name=run]").click()
        find(driver, "ol.transcript")

    def prompts(driver: webdriver.Chrome) -> None:
        go(f"#/apps/{menu}/prompts", "li.card.prompt")(driver)
        find(driver, "li.card.prompt button[name=type]").click()

    def dialog_of(route: str, row_css: str, text: str) -> Callable[[webdriver.Chrome], None]:
        def open_dialog(driver: webdriver.Chrome) -> None:
            go(route, row_css, text)(driver)
            row = by_text(driver, row_css, text)
            row.find_element("css selector", "button[name=edit]").click()
            find(driver, "dialog[open] input")

        return open_dialog

    return [
        ("apps", go("#/apps", "main h2", "Main menu")),
        ("menu-editor", go(f"#/apps/{menu}", ".flow svg")),
        ("messages", prompts),
        ("try-a-call", try_call),
        ("voicemail", go(f"#/voicemail/{box}", "main h1", "Voicemail")),
        ("call-log", go("#/calls", "main h1", "Call log")),
        ("users", go("#/users", "tbody tr")),
        ("phone-numbers", go("#/numbers", "li.card")),
        ("a-user", dialog_of("#/users", "tbody tr", "Erik Berg")),
        ("teams", go("#/teams", "li.card")),
        ("a-team", dialog_of("#/teams", "li.card", "Reception")),
        ("opening-hours", go("#/schedules", "li.card .special-list")),
        ("opening-hours-edit", dialog_of("#/schedules", "li.card", "Clinic hours")),
        ("recordings", go("#/recordings", "main h1", "Call recordings")),
        ("security", go("#/security", "tr[data-kind=failure]")),
    ]


def main(argv: list[str] | None = None) -> int:
    """Fill a demo account and photograph every page at both widths."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="openivr-shots-") as tmp_dir:
        tmp = Path(tmp_dir)
        # The practice's people are rung at their mobile numbers: the node has a trunk (none
        # answers here, and no photographed page places a call through it).
        settings = base_settings(
            tmp,
            sip_port=free_udp_port(),
            rtp_ports=rtp_range(),
            sip_trunk=f"sip:127.0.0.1:{free_udp_port()}",
        )
        runner = run_server(settings)
        server = next(runner)
        try:
            demo = fill(server, tmp)
            for label, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
                with chromium(width, height) as driver:
                    open_signed_out(driver, server)
                    photograph(driver, args.out / f"sign-in-{label}.png", width)
                    sign_in(driver, demo.account.email, demo.account.password)
                    by_text(driver, "main h2", "Main menu")
                    for name, open_page in pages(demo):
                        driver.set_window_size(width, height)
                        for dialog in driver.find_elements("css selector", "dialog[open]"):
                            driver.execute_script("arguments[0].remove()", dialog)
                        open_page(driver)
                        photograph(driver, args.out / f"{name}-{label}.png", width)
                        print(f"{name}-{label}.png")
        finally:
            next(runner, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
