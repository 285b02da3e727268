"""Voice-app schemas: defaults, validation and the public representation of each app type."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from openivr.apps import validation as v
from openivr.apps.validation import FieldError
from openivr.engine.vocabulary import ACTIONS, CALL_TARGETS, MENU_SLOTS, VOICES

# `disconnect` is how the hosted service's clients take a digit out of use: stored as empty.
ACCEPTED_ACTIONS = (*ACTIONS, "disconnect")
_ACTION_LIST = "call, connect, play, hangup, repeat, disconnect or an empty string"
EMPTY_ACTION: dict[str, str] = {"action": "", "to": "", "id": ""}
# An IVR without a schedule is always open.
NO_OPEN_HOURS: dict[str, Any] = {"schedule_id": "", "closed_action": dict(EMPTY_ACTION)}
READ_ONLY = ("app_id", "shortcode", "sip_address", "tts_allowed", "account_id", "create_date")

IVR_DEFAULTS: dict[str, Any] = {
    "voice": "en",
    "play_welcome": "yes",
    "play_menu": "yes",
    "get_extension": "no",
    "menu": {key: dict(EMPTY_ACTION) for key in MENU_SLOTS},
    "final_action": dict(EMPTY_ACTION),
    "menu_timeout": 5,
    "interdigit_timeout": 2,
    "max_retries": 3,
    "open_hours": NO_OPEN_HOURS,
}
MAILBOX_DEFAULTS: dict[str, Any] = {
    "voice": "en",
    "greeting_prompt": "yes",
    "goodbye_prompt": "yes",
    "deliver_to": "",
    "deliver_to_details": "",
    "max_message_seconds": 120,
    "max_messages": 100,
    "webhook_url": "",
}
SYSPROMPT_DEFAULTS: dict[str, Any] = {
    "voice": "en",
    "error_voice": "en",
    "error_repeat_voice": "en",
    "usermailbox_voice": "en",
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "ivr": IVR_DEFAULTS,
    "mailbox": MAILBOX_DEFAULTS,
    "sysprompt": SYSPROMPT_DEFAULTS,
}


def writable_fields(app_type: str) -> tuple[str, ...]:
    """The fields a create or PUT of this app type may set."""
    return ("app_type", "name", *DEFAULTS[app_type])


@dataclass
class AccountRefs:
    """The objects of one account that settings may point to."""

    users: set[str] = field(default_factory=set)
    apps: dict[str, str] = field(default_factory=dict)  # app_id -> app_type
    prompts: set[str] = field(default_factory=set)
    teams: set[str] = field(default_factory=set)
    schedules: set[str] = field(default_factory=set)


def _voice(name: str, value: Any) -> str:
    if not isinstance(value, str) or value not in VOICES:
        raise FieldError(name, f"must be one of {', '.join(VOICES)}; got {value!r}")
    return value


def validate_action(name: str, raw: Any, refs: AccountRefs, self_id: str | None) -> dict[str, str]:
    """One menu or final action, with every reference checked against the account."""
    if raw is None:
        return dict(EMPTY_ACTION)
    obj = v.expect_object(name, raw)
    unknown = set(obj) - {"action", "to", "id"}
    if unknown:
        raise FieldError(name, f"unknown keys {sorted(unknown)}; an action has action, to and id")
    # null means empty: clients send {"action": "disconnect", "to": null, "id": null}.
    action, to, target = (
        "" if obj.get(part) is None else obj[part] for part in ("action", "to", "id")
    )
    for part, val in (("action", action), ("to", to), ("id", target)):
        if not isinstance(val, str | int) or isinstance(val, bool):
            raise FieldError(f"{name}.{part}", "must be a string")
    action, to, target = str(action).strip(), str(to).strip(), str(target).strip()
    if action not in ACCEPTED_ACTIONS:
        raise FieldError(f"{name}.action", f"must be one of {_ACTION_LIST}")
    if action == "disconnect":
        return dict(EMPTY_ACTION)
    if action in ("", "hangup", "repeat"):
        return {"action": action, "to": "", "id": ""}
    if action == "call":
        if to not in CALL_TARGETS:
            raise FieldError(f"{name}.to", f"a call goes to one of {', '.join(CALL_TARGETS)}")
        if to == "user":
            if target not in refs.users:
                raise FieldError(
                    f"{name}.id", f"no user {target!r} in this account", "unknown_reference"
                )
        elif to == "csg":
            if target not in refs.teams:
                raise FieldError(
                    f"{name}.id", f"no team {target!r} in this account", "unknown_reference"
                )
        elif to == "phnum":
            target = v.e164(f"{name}.id", target)
        elif to == "other":
            target = v.number_or_sip_address(f"{name}.id", target)
        else:
            target = v.sip_uri(f"{name}.id", target)
    elif action == "connect":
        if to != "app":
            raise FieldError(f"{name}.to", "connect goes to 'app'")
        kind = refs.apps.get(target)
        if kind is None:
            raise FieldError(
                f"{name}.id", f"no voice app {target!r} in this account", "unknown_reference"
            )
        if kind == "sysprompt":
            raise FieldError(f"{name}.id", "a sysprompt app cannot take calls")
    elif action == "play":
        if to != "prompt":
            raise FieldError(f"{name}.to", "play goes to 'prompt'")
        if target not in refs.prompts:
            raise FieldError(
                f"{name}.id", f"no prompt {target!r} in this account", "unknown_reference"
            )
    return {"action": action, "to": to, "id": target}


def _apply_ivr(
    cfg: dict[str, Any], body: Mapping[str, Any], refs: AccountRefs, app_id: str | None
) -> None:
    for flag in ("play_welcome", "play_menu", "get_extension"):
        if flag in body:
            cfg[flag] = v.yes_no(flag, body[flag])
    if "voice" in body:
        cfg["voice"] = _voice("voice", body["voice"])
    if "menu" in body and body["menu"] is not None:
        menu = v.expect_object("menu", body["menu"])
        unknown = set(menu) - set(MENU_SLOTS)
        if unknown:
            raise FieldError("menu", f"unknown keys {sorted(unknown)}; use {', '.join(MENU_SLOTS)}")
        for key, raw in menu.items():
            cfg["menu"][key] = validate_action(f"menu.{key}", raw, refs, app_id)
    if "final_action" in body:
        cfg["final_action"] = validate_action("final_action", body["final_action"], refs, app_id)
    if "menu_timeout" in body:
        cfg["menu_timeout"] = _whole(v.number("menu_timeout", body["menu_timeout"], 1, 60))
    if "interdigit_timeout" in body:
        cfg["interdigit_timeout"] = _whole(
            v.number("interdigit_timeout", body["interdigit_timeout"], 1, 10)
        )
    if "max_retries" in body:
        cfg["max_retries"] = int(v.number("max_retries", body["max_retries"], 0, 10, integer=True))
    if "open_hours" in body:
        cfg["open_hours"] = validate_open_hours(body["open_hours"], refs, app_id)


def validate_open_hours(raw: Any, refs: AccountRefs, app_id: str | None) -> dict[str, Any]:
    """`{"schedule_id", "closed_action"}`: the schedule must be the account's; null: always open."""
    if raw is None:
        return copy.deepcopy(NO_OPEN_HOURS)
    obj = v.expect_object("open_hours", raw)
    unknown = set(obj) - {"schedule_id", "closed_action"}
    if unknown:
        raise FieldError(
            "open_hours", f"unknown keys {sorted(unknown)}; use schedule_id and closed_action"
        )
    schedule_id = obj.get("schedule_id") or ""
    if not isinstance(schedule_id, str):
        raise FieldError("open_hours.schedule_id", "must be a string")
    schedule_id = schedule_id.strip()
    if not schedule_id:
        if obj.get("closed_action") not in (None, {}, EMPTY_ACTION):
            raise FieldError(
                "open_hours.schedule_id", "is required with a closed_action (which schedule?)"
            )
        return copy.deepcopy(NO_OPEN_HOURS)
    if schedule_id not in refs.schedules:
        raise FieldError(
            "open_hours.schedule_id",
            f"no schedule {schedule_id!r} in this account",
            "unknown_reference",
        )
    closed = validate_action("open_hours.closed_action", obj.get("closed_action"), refs, app_id)
    if closed["action"] == "repeat":
        raise FieldError(
            "open_hours.closed_action.action", "repeat would play the menu while closed"
        )
    return {"schedule_id": schedule_id, "closed_action": closed}


def _whole(value: float) -> float | int:
    return int(value) if value == int(value) else value


def _apply_mailbox(cfg: dict[str, Any], body: Mapping[str, Any], refs: AccountRefs) -> None:
    for flag in ("greeting_prompt", "goodbye_prompt"):
        if flag in body:
            cfg[flag] = v.yes_no(flag, body[flag])
    if "voice" in body:
        cfg["voice"] = _voice("voice", body["voice"])
    if "deliver_to" in body:
        kind = body["deliver_to"]
        if kind not in ("", "email", "user"):
            raise FieldError("deliver_to", "must be 'email', 'user' or ''")
        cfg["deliver_to"] = kind
    if "deliver_to_details" in body:
        cfg["deliver_to_details"] = body["deliver_to_details"]
    if "max_message_seconds" in body:
        cfg["max_message_seconds"] = int(
            v.number("max_message_seconds", body["max_message_seconds"], 5, 3600, integer=True)
        )
    if "max_messages" in body:
        cfg["max_messages"] = int(
            v.number("max_messages", body["max_messages"], 1, 10000, integer=True)
        )
    if "webhook_url" in body:
        url = v.text("webhook_url", body["webhook_url"], 2000, allow_empty=True)
        if url and not url.startswith(("http://", "https://")):
            raise FieldError("webhook_url", "must be an http:// or https:// URL")
        cfg["webhook_url"] = url
    # deliver_to and its details are checked together, whichever of them changed.
    kind, details = cfg["deliver_to"], cfg["deliver_to_details"]
    if kind == "email":
        cfg["deliver_to_details"] = v.email("deliver_to_details", details)
    elif kind == "user":
        details = str(details).strip() if isinstance(details, str | int) else details
        if details not in refs.users:
            raise FieldError(
                "deliver_to_details", f"no user {details!r} in this account", "unknown_reference"
            )
        cfg["deliver_to_details"] = details
    else:
        cfg["deliver_to_details"] = ""


def _apply_sysprompt(cfg: dict[str, Any], body: Mapping[str, Any]) -> None:
    for name in ("voice", "error_voice", "error_repeat_voice", "usermailbox_voice"):
        if name in body:
            cfg[name] = _voice(name, body[name])


def build_config(
    app_type: str,
    body: Mapping[str, Any],
    refs: AccountRefs,
    current: Mapping[str, Any] | None = None,
    app_id: str | None = None,
) -> tuple[str | None, dict[str, Any]]:
    """Validate a create/update body; return (new name or None, the app's full config)."""
    cfg = copy.deepcopy(dict(current) if current is not None else DEFAULTS[app_type])
    # Settings added after an app was saved get their defaults.
    for key, default in DEFAULTS[app_type].items():
        cfg.setdefault(key, copy.deepcopy(default))
    if app_type == "ivr":
        for key in MENU_SLOTS:
            cfg["menu"].setdefault(key, dict(EMPTY_ACTION))
        _apply_ivr(cfg, body, refs, app_id)
    elif app_type == "mailbox":
        _apply_mailbox(cfg, body, refs)
    else:
        _apply_sysprompt(cfg, body)
    name = v.text("name", body["name"]) if "name" in body else None
    return name, cfg


def references(app_type: str, cfg: Mapping[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """Every (field, action) of an app that points somewhere."""
    found: list[tuple[str, dict[str, str]]] = []
    if app_type == "ivr":
        for key, act in cfg.get("menu", {}).items():
            if act.get("action") in ("call", "connect", "play"):
                found.append((f"menu.{key}", act))
        final = cfg.get("final_action") or {}
        if final.get("action") in ("call", "connect", "play"):
            found.append(("final_action", final))
        closed = (cfg.get("open_hours") or {}).get("closed_action") or {}
        if closed.get("action") in ("call", "connect", "play"):
            found.append(("open_hours.closed_action", closed))
    return found


# What an action pointing at each kind of object looks like: (action, to).
_POINTERS = {
    "user": ("call", "user"),
    "app": ("connect", "app"),
    "prompt": ("play", "prompt"),
    "team": ("call", "csg"),
}


def points_to(act: Mapping[str, str], kind: str, target: str) -> bool:
    """Whether an action refers to a user, app, prompt or team with this id."""
    wanted = _POINTERS.get(kind)
    return (act.get("action"), act.get("to")) == wanted and act.get("id") == target


def uses_schedule(cfg: Mapping[str, Any], schedule_id: str) -> bool:
    """Whether an IVR's opening hours follow this schedule."""
    return bool((cfg.get("open_hours") or {}).get("schedule_id") == schedule_id)


def clear_references(app_type: str, cfg: dict[str, Any], kind: str, target: str) -> list[str]:
    """Reset every action pointing at a deleted object; return the fields cleared."""
    cleared: list[str] = []
    if app_type == "ivr":
        for key, act in cfg.get("menu", {}).items():
            if points_to(act, kind, target):
                cfg["menu"][key] = dict(EMPTY_ACTION)
                cleared.append(f"menu.{key}")
        if points_to(cfg.get("final_action") or {}, kind, target):
            cfg["final_action"] = dict(EMPTY_ACTION)
            cleared.append("final_action")
        hours = cfg.get("open_hours") or {}
        if kind == "schedule" and uses_schedule(cfg, target):
            cfg["open_hours"] = copy.deepcopy(NO_OPEN_HOURS)
            cleared.append("open_hours")
        elif points_to(hours.get("closed_action") or {}, kind, target):
            cfg["open_hours"] = dict(hours, closed_action=dict(EMPTY_ACTION))
            cleared.append("open_hours.closed_action")
    if app_type == "mailbox" and kind == "user":
        if cfg.get("deliver_to") == "user" and cfg.get("deliver_to_details") == target:
            cfg["deliver_to"], cfg["deliver_to_details"] = "", ""
            cleared.append("deliver_to")
    return cleared


def mailbox_user_reference(cfg: Mapping[str, Any], user_id: str) -> bool:
    """Whether a mailbox delivers to this user."""
    return cfg.get("deliver_to") == "user" and cfg.get("deliver_to_details") == user_id
