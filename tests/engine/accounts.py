"""Accounts for engine tests, built the way the store would describe them."""

from __future__ import annotations

from typing import Any

from openivr.engine import AppConfig, PromptRef, StaticConfig, UserConfig

ACCOUNT = "100"
OTHER_ACCOUNT = "200"
ALICE_SIP = "sip:alice@127.0.0.1"
CAROL_PHNUM = "+46701234567"
SIP_DOMAIN = "openivr.local"


def action(kind: str = "", to: str = "", ref: str = "") -> dict[str, str]:
    """An action in the API's shape."""
    return {"action": kind, "to": to, "id": ref}


def call_user(user_id: str) -> dict[str, str]:
    """Menu entry: ring a user."""
    return action("call", "user", user_id)


def connect(app_id: str) -> dict[str, str]:
    """Menu entry: hand the call to another app."""
    return action("connect", "app", app_id)


def play(prompt_id: str) -> dict[str, str]:
    """Menu entry: play a prompt."""
    return action("play", "prompt", prompt_id)


def build(
    main: dict[str, Any] | None = None,
    *,
    apps: list[dict[str, Any]] = (),  # type: ignore[assignment]
    message_counts: dict[str, int] | None = None,
) -> StaticConfig:
    """Account 100 (main menu VAmain, mailbox VAvm, sysprompt VAsys, users, prompts) and
    account 200 with look-alike objects a call of account 100 must never reach."""
    base = {
        "app_id": "VAmain",
        "app_type": "ivr",
        "name": "Main menu",
        "voice": "en",
        "play_welcome": "yes",
        "play_menu": "yes",
        "get_extension": "no",
        "menu": {},
    }
    base.update(main or {})
    payloads = [
        base,
        {"app_id": "VAvm", "app_type": "mailbox", "name": "Voice Mail", "voice": "swe"},
        {
            "app_id": "VAsys",
            "app_type": "sysprompt",
            "name": "System Prompt",
            "voice": "en-uk-fe",
            "error_voice": "fr-fe",
            "error_repeat_voice": "spa",
            "usermailbox_voice": "gr-fe",
        },
        *apps,
    ]
    # As the store gives them: each app knows its own address on the node's SIP domain.
    configs = [
        AppConfig.from_api({"sip_address": f"{p['app_id']}@{SIP_DOMAIN}", **p}, account_id=ACCOUNT)
        for p in payloads
    ]
    configs += [
        AppConfig.from_api(
            {
                "app_id": "VAother",
                "app_type": "ivr",
                "name": "Other account menu",
                "sip_address": f"VAother@{SIP_DOMAIN}",
            },
            account_id=OTHER_ACCOUNT,
        ),
        AppConfig.from_api(
            {"app_id": "VAothersys", "app_type": "sysprompt", "name": "Other system"},
            account_id=OTHER_ACCOUNT,
        ),
    ]
    users = [
        UserConfig("7", ACCOUNT, "Alice", "101", sip_uri=ALICE_SIP),
        UserConfig("8", ACCOUNT, "Bob", "102"),  # neither sip_uri nor phnum
        UserConfig("9", ACCOUNT, "Carol", "103", phnum=CAROL_PHNUM),
        UserConfig("70", OTHER_ACCOUNT, "Mallory", "104", sip_uri="sip:mallory@127.0.0.1"),
    ]
    prompts = [
        PromptRef("P1", "VAmain", ACCOUNT, "Opening hours", None, "We are open nine to five"),
        PromptRef("P2", "VAmain", ACCOUNT, "Not recorded yet", None, None, has_audio=False),
        PromptRef("P70", "VAother", OTHER_ACCOUNT, "Other account news", None, "secret"),
    ]
    return StaticConfig(configs, users, prompts, message_counts)
