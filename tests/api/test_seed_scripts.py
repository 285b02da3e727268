"""The compatible API's own sample scripts run unchanged against a real `openivr serve`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node_process import Node, clean_env, serving_node

SCRIPTS = Path(__file__).parent / "seed_scripts"
PHONE_NUMBER = "+46812345678"
OTHER_NUMBER = "+4940123456"


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
        env=clean_env(),
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
