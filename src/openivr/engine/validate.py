"""Problems in a voice app's configuration that would hurt a real call."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from openivr.engine.config import AppConfig, CallConfig, MenuAction
from openivr.engine.routing import (
    Reachability,
    is_number,
    local_app,
    route_transfer,
    sip_address,
)
from openivr.engine.vocabulary import DIGIT_SLOTS

_E164 = re.compile(r"^\+[1-9][0-9]{5,14}$")


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: `severity` error (a call goes wrong) or warning (probably unintended)."""

    severity: str
    code: str
    field: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "severity": self.severity,
            "code": self.code,
            "field": self.field,
            "detail": self.detail,
        }


def validate(
    config: CallConfig, app_id: str, reachability: Reachability | None = None
) -> list[Problem]:
    """Check one app: dangling references, silent prompts, loops, menus that lead nowhere, and
    transfer targets a call could not ring now (`reachability`: the node's trunk and the phones
    registered now; by default a trunk and no phone)."""
    reach = reachability or Reachability()
    app = config.app(app_id)
    if app is None:
        return [Problem("error", "app_not_found", "app_id", f"no voice app {app_id!r}")]
    problems: list[Problem] = []
    if config.sysprompt_app(app.account_id) is None:
        problems.append(
            Problem(
                "warning",
                "no_sysprompt_app",
                "account",
                "the account has no sysprompt app; system messages use the default recordings",
            )
        )
    if app.app_type == "mailbox":
        held = config.message_count(app.app_id)
        if held >= app.max_messages:
            problems.append(
                Problem(
                    "warning",
                    "mailbox_full",
                    "max_messages",
                    f"the mailbox holds {held} of {app.max_messages} messages; "
                    "callers hear 'unavailable'",
                )
            )
    elif app.app_type == "ivr":
        problems.extend(_check_ivr(config, app, reach))
    return problems


def _check_ivr(config: CallConfig, app: AppConfig, reach: Reachability) -> list[Problem]:
    problems: list[Problem] = []
    if app.play_menu:
        usable = app.get_extension
        for slot in (*DIGIT_SLOTS.values(), "timeout", "invalid"):
            action = app.action(slot)
            if not action.in_use:
                continue
            found = _check_action(config, app, reach, f"menu.{slot}", action)
            problems.extend(found)
            if slot.startswith("digit_") and not any(p.severity == "error" for p in found):
                usable = True
        if not usable:
            problems.append(
                Problem(
                    "error",
                    "menu_no_usable_digit",
                    "menu",
                    "no key of the menu leads anywhere and extensions are off",
                )
            )
        return problems
    if app.final_action.in_use:
        problems.extend(_check_action(config, app, reach, "final_action", app.final_action))
    elif not app.play_welcome:
        problems.append(
            Problem(
                "warning",
                "announcement_does_nothing",
                "final_action",
                "the announcement plays no welcome and has no final action: callers are hung up",
            )
        )
    if app.action("timeout").in_use:
        problems.extend(_check_action(config, app, reach, "menu.timeout", app.action("timeout")))
    cycle = _announcement_cycle(config, app)
    if cycle:
        problems.append(
            Problem(
                "error",
                "connect_cycle",
                "final_action",
                "announcements connect in a loop with no menu in between: " + " → ".join(cycle),
            )
        )
    return problems


def _check_action(
    config: CallConfig, app: AppConfig, reach: Reachability, field: str, action: MenuAction
) -> list[Problem]:
    account = app.account_id
    kind, to, target = action.action, action.to, action.id
    if kind in ("hangup", "repeat"):
        return []
    if kind == "call":
        if to == "user":
            user = config.user(account, target)
            if user is None or user.account_id != account:
                return [_error("user_not_found", field, f"no user {target!r} in this account")]
            route = route_transfer("user", target, user, reach)
            if not route.reachable:
                # Phones register and unregister: true now, perhaps not in a minute.
                return [
                    Problem(
                        "warning",
                        "user_unreachable",
                        field,
                        f"user {target} is not reachable now: {route.detail}; "
                        "callers hear 'unavailable'",
                    )
                ]
            return []
        if to == "phnum" or (to == "other" and is_number(target)):
            if not _E164.match(target):
                return [_error("bad_number", field, f"{target!r} is not an E.164 number (+...)")]
            route = route_transfer("phnum", target, None, reach)
            if not route.reachable:
                return [_error("no_trunk", field, f"{route.detail}: callers hear 'unavailable'")]
            return []
        if to in ("other", "sip"):
            address = sip_address(target)
            if "@" not in address:
                return [
                    _error("bad_sip_uri", field, f"{target!r} is not a SIP address (user@host)")
                ]
            local = local_app(config, account, address)
            if local is not None and local.app_type == "sysprompt":
                return [_error("connect_to_sysprompt", field, "a sysprompt app cannot take calls")]
            return []
        return [_error("bad_action", field, f"call to {to!r}; use user, phnum, other or sip")]
    if kind == "connect":
        other = config.app(target)
        if other is None or other.account_id != account:
            return [_error("app_not_found", field, f"no voice app {target!r} in this account")]
        if other.app_type == "sysprompt":
            return [_error("connect_to_sysprompt", field, "a sysprompt app cannot take calls")]
        return []
    if kind == "play":
        prompt = config.prompt(account, target)
        if prompt is None or prompt.account_id != account:
            return [_error("prompt_not_found", field, f"no prompt {target!r} in this account")]
        if not prompt.has_audio:
            return [
                Problem(
                    "warning",
                    "prompt_no_audio",
                    field,
                    f"prompt {prompt.name!r} has no recording yet: callers hear nothing",
                )
            ]
        return []
    return [_error("bad_action", field, f"unknown action {kind!r}")]


def _announcement_cycle(config: CallConfig, app: AppConfig) -> list[str]:
    """The app ids of a final_action connect loop through announcements only, if any."""
    path = [app.app_id]
    current = app
    while current.is_announcement:
        final = current.final_action
        if final.action != "connect":
            return []
        nxt = config.app(final.id)
        if nxt is None or nxt.account_id != app.account_id:
            return []
        if nxt.app_id in path:
            return [*path[path.index(nxt.app_id) :], nxt.app_id]
        path.append(nxt.app_id)
        current = nxt
    return []


def _error(code: str, field: str, detail: str) -> Problem:
    return Problem("error", code, field, detail)
