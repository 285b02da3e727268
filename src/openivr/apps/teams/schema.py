"""A team's fields: defaults, validation against the account, and the public shape.

A team is an ordered list of users rung together (`all`) or in turn (`order`, `rotate`), with
`ring_seconds` per member, `max_seconds` for the whole team and a `no_answer` action.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from openivr.apps import validation as v
from openivr.apps.validation import FieldError
from openivr.apps.voiceapps.schema import EMPTY_ACTION, AccountRefs, validate_action
from openivr.engine.vocabulary import STRATEGIES

WRITABLE = ("name", "members", "strategy", "ring_seconds", "max_seconds", "no_answer")
READ_ONLY = ("team_id", "account_id", "create_date")
MAX_MEMBERS = 100
RING_SECONDS = (5, 300)
MAX_SECONDS = (5, 3600)
DEFAULTS: dict[str, Any] = {
    "members": [],
    "strategy": "all",
    "ring_seconds": 20,
    "max_seconds": 60,
    "no_answer": EMPTY_ACTION,
}


def build_team(
    body: Mapping[str, Any], refs: AccountRefs, current: Mapping[str, Any] | None = None
) -> tuple[str | None, dict[str, Any]]:
    """Validate a create/update body; return (new name or None, the team's full config)."""
    cfg = copy.deepcopy(dict(current) if current is not None else DEFAULTS)
    for key, default in DEFAULTS.items():
        cfg.setdefault(key, copy.deepcopy(default))
    if "members" in body:
        cfg["members"] = members(body["members"], refs)
    if "strategy" in body:
        strategy = body["strategy"]
        if strategy not in STRATEGIES:
            raise FieldError(
                "strategy", f"must be one of {', '.join(STRATEGIES)}; got {strategy!r}"
            )
        cfg["strategy"] = strategy
    if "ring_seconds" in body:
        cfg["ring_seconds"] = v.whole_number("ring_seconds", body["ring_seconds"], *RING_SECONDS)
    if "max_seconds" in body:
        cfg["max_seconds"] = v.whole_number("max_seconds", body["max_seconds"], *MAX_SECONDS)
    if "no_answer" in body:
        action = validate_action("no_answer", body["no_answer"], refs, None)
        if action["action"] == "repeat":
            raise FieldError(
                "no_answer.action",
                "repeat has no menu to repeat here; leave no_answer empty to return to the menu",
            )
        cfg["no_answer"] = action
    name = v.text("name", body["name"]) if "name" in body else None
    return name, cfg


def members(raw: Any, refs: AccountRefs) -> list[str]:
    """An ordered list of distinct user ids of the account."""
    if not isinstance(raw, list):
        raise FieldError("members", "must be a list of user ids")
    if len(raw) > MAX_MEMBERS:
        raise FieldError("members", f"at most {MAX_MEMBERS} members")
    found: list[str] = []
    for index, value in enumerate(raw):
        where = f"members[{index}]"
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise FieldError(where, "must be a user id")
        user_id = str(value).strip()
        if user_id not in refs.users:
            raise FieldError(where, f"no user {user_id!r} in this account", "unknown_reference")
        if user_id in found:
            raise FieldError(where, f"user {user_id} is already a member")
        found.append(user_id)
    return found


def team_view(
    team_id: str, account_id: str, name: str, config: Mapping[str, Any], create_date: str
) -> dict[str, Any]:
    """The public shape of a team."""
    view: dict[str, Any] = {"team_id": team_id, "account_id": account_id, "name": name}
    for key, default in DEFAULTS.items():
        view[key] = copy.deepcopy(config.get(key, default))
    view["create_date"] = create_date
    return view
