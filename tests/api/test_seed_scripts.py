"""The compatible API's own sample scripts run unchanged against a real `openivr serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

SCRIPTS = Path(__file__).parent / "seed_scripts"
PHONE_NUMBER = "+46812345678"
OTHER_NUMBER = "+4940123456"


def openivr_command() -> list[str]:
    """The `openivr` command of the interpreter running the tests."""
    sibling = Path(sys.executable).with_name("openivr")
    if sibling.exists():
        return [str(sibling)]
    return [sys.executable, "-m", "openivr.cli"]


def _clean_env() -> dict[str, str]:
    # The developer's own OPENIVR_* settings must not leak into the node under test.
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENIVR_")}


@dataclass
class Node:
    """A real `openivr serve` process with one account logged in."""

    base_url: str
    account_id: str
    user_id: str
    token: str
    log: Path

    def get(self, path: str) -> Any:
        """The payload of an authenticated GET, asserting success."""
        r = httpx.get(
            self.base_url + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "success", body
        return body["response"]

    def apps(self) -> list[dict[str, Any]]:
        """Every voice app of the account."""
        return list(self.get(f"/account/{self.account_id}/voiceapp"))

    def app_of_type(self, app_type: str) -> dict[str, Any]:
        """The (first) app of a type, e.g. the default mailbox."""
        return next(a for a in self.apps() if a["app_type"] == app_type)


def _wait_until_serving(proc: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"openivr serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(base_url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"openivr serve did not answer /healthz within 60 s:\n{log.read_text()}")


@contextmanager
def serving_node(tmp: Path) -> Iterator[Node]:
    """Start `openivr serve`, create an account with the CLI while it runs, and log in."""
    data_dir = tmp / "data"
    port = free_port()
    log = tmp / "server.log"
    env = _clean_env()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *openivr_command(),
                "serve",
                "--data-dir",
                str(data_dir),
                "--http-port",
                str(port),
                "--sip-port",
                "0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(proc, base_url, log)
        email, password = "owner@example.com", "seed-script-pass"
        created = subprocess.run(
            [
                *openivr_command(),
                "account",
                "create",
                "--email",
                email,
                "--password",
                password,
                "--name",
                "Seed Scripts Ltd",
                "--data-dir",
                str(data_dir),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        ids = json.loads(created.stdout)
        r = httpx.post(
            base_url + "/SonetelAuth/beta/oauth/token",
            auth=("sonetel-api", "sonetel-api"),
            data={"grant_type": "password", "username": email, "password": password},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        yield Node(base_url, ids["account_id"], ids["user_id"], r.json()["access_token"], log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A real node process with a logged-in account, shared by this module's tests."""
    with serving_node(tmp_path_factory.mktemp("node")) as running:
        yield running


def fill_in(template: str, values: dict[str, list[str]]) -> str:
    """The script with each placeholder occurrence replaced, in order, by the given values."""
    text = template
    for placeholder, replacements in values.items():
        assert text.count(placeholder) == len(replacements), placeholder
        for value in replacements:
            text = text.replace(placeholder, value, 1)
    return text


def run_script(tmp_path: Path, name: str, values: dict[str, list[str]]) -> str:
    """Run one seed script with its placeholders filled in; its standard output."""
    script = tmp_path / name.removesuffix(".txt")
    script.write_text(fill_in((SCRIPTS / name).read_text(), values))
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_clean_env(),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _base(node: Node) -> str:
    # The scripts join base_url and "account/..." directly, so it ends with a slash.
    return node.base_url + "/"


def test_creating_a_new_ivr_script_creates_the_menu_it_describes(
    node: Node, tmp_path: Path
) -> None:
    mailbox = node.app_of_type("mailbox")
    before = {a["app_id"] for a in node.apps()}
    out = run_script(
        tmp_path,
        "create_ivr.py.txt",
        {
            "https://public-api.sonetel.com/": [_base(node)],
            "ENTER_ACCESS_TOKEN": [node.token],
            "ENTER_ACCOUNT_ID": [node.account_id],
            "ENTER_USER_ID": [node.user_id],
            "ENTER_PHONE_NUMBER": [PHONE_NUMBER],
            "ENTER_APP_ID": [mailbox["app_id"]],
        },
    )
    assert out.splitlines()[-1] == "IVR Created successfully", out
    new = [a for a in node.apps() if a["app_id"] not in before]
    assert len(new) == 1, new
    app = node.get(f"/account/{node.account_id}/voiceapp/{new[0]['app_id']}")
    assert app["app_type"] == "ivr"
    assert app["name"] == "TYPE_NAME_OF_NEW_IVR"  # the script's own placeholder name
    assert (app["voice"], app["play_menu"], app["play_welcome"], app["get_extension"]) == (
        "en",
        "yes",
        "yes",
        "yes",
    )
    menu = app["menu"]
    assert menu["digit_0"] == {"action": "call", "to": "user", "id": node.user_id}
    assert menu["digit_1"] == {"action": "call", "to": "phnum", "id": PHONE_NUMBER}
    assert menu["digit_2"] == {"action": "connect", "to": "app", "id": mailbox["app_id"]}
    assert menu["digit_3"]["action"] == ""


def test_configuring_an_existing_ivr_script_changes_the_default_main_menu(
    node: Node, tmp_path: Path
) -> None:
    main_menu = next(a for a in node.apps() if a["name"] == "Main menu")
    mailbox = node.app_of_type("mailbox")
    out = run_script(
        tmp_path,
        "configure_ivr.py.txt",
        {
            "https://public-api.sonetel.com/": [_base(node)],
            "ENTER_ACCESS_TOKEN": [node.token],
            "ENTER_ACCOUNT_ID": [node.account_id],
            # First the app to change, then the app digit 3 connects to.
            "ENTER_APP_ID": [main_menu["app_id"], mailbox["app_id"]],
            "ENTER_USER_ID": [node.user_id],
            "ENTER_PHONE_NUMBER": [OTHER_NUMBER],
        },
    )
    assert out.strip() == "IVR updated successfully", out
    app = node.get(f"/account/{node.account_id}/voiceapp/{main_menu['app_id']}")
    assert app["name"] == "ENTER_IVR_NAME"  # the script's own placeholder name
    assert (app["voice"], app["play_menu"], app["play_welcome"], app["get_extension"]) == (
        "en",
        "yes",
        "yes",
        "yes",
    )
    menu = app["menu"]
    assert menu["digit_1"] == {"action": "call", "to": "phnum", "id": OTHER_NUMBER}
    assert menu["digit_2"] == {"action": "call", "to": "user", "id": node.user_id}
    assert menu["digit_3"] == {"action": "connect", "to": "app", "id": mailbox["app_id"]}
    # The script sends only digits 1-3: the rest of the menu keeps what it had.
    assert menu["digit_0"] == main_menu["menu"]["digit_0"]
    assert app["shortcode"] == main_menu["shortcode"]


def test_a_script_with_a_wrong_token_does_not_claim_success(node: Node, tmp_path: Path) -> None:
    out = run_script(
        tmp_path,
        "configure_ivr.py.txt",
        {
            "https://public-api.sonetel.com/": [_base(node)],
            "ENTER_ACCESS_TOKEN": [node.token[:-4] + "AAAA"],
            "ENTER_ACCOUNT_ID": [node.account_id],
            "ENTER_APP_ID": [node.app_of_type("ivr")["app_id"]] * 2,
            "ENTER_USER_ID": [node.user_id],
            "ENTER_PHONE_NUMBER": [OTHER_NUMBER],
        },
    )
    assert "IVR updated successfully" not in out
