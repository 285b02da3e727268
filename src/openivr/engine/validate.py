"""Problems in a voice app's configuration that would hurt a real call."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from openivr.engine.config import AppConfig, CallConfig, MenuAction, TeamConfig
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
    problems: list[Problem] = _check_hours(config, app, reach)
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


def _check_hours(config: CallConfig, app: AppConfig, reach: Reachability) -> list[Problem]:
    """Opening hours: a schedule that exists and opens, a closed action that leads somewhere."""
    hours = app.open_hours
    if hours is None:
        return []
    schedule = config.schedule(app.account_id, hours.schedule_id)
    if schedule is None or schedule.account_id != app.account_id:
        return [
            _error(
                "schedule_not_found",
                "open_hours.schedule_id",
                f"no schedule {hours.schedule_id!r} in this account: the menu is always open",
            )
        ]
    problems: list[Problem] = []
    if not schedule.ever_open:
        problems.append(
            Problem(
                "warning",
                "schedule_never_open",
                "open_hours.schedule_id",
                f"schedule {schedule.name!r} has no opening hours: every caller gets the closed "
                "action",
            )
        )
    closed = hours.closed_action
    field = "open_hours.closed_action"
    if not closed.in_use:
        problems.append(
            Problem(
                "warning",
                "closed_action_reaches_nothing",
                field,
                "outside opening hours callers hear 'we are closed' and are hung up; a closed "
                "action could take a message",
            )
        )
    elif closed.action == "connect" and closed.id == app.app_id:
        problems.append(
            _error(
                "closed_action_reaches_nothing",
                field,
                "the closed action connects back to this menu, which is still closed",
            )
        )
    else:
        problems.extend(_check_action(config, app, reach, field, closed))
    return problems


def _check_action(
    config: CallConfig, app: AppConfig, reach: Reachability, field: str, action: MenuAction
) -> list[Problem]:
    account = app.account_id
    kind, to, target = action.action, action.to, action.id
    if kind in ("hangup", "repeat"):
        return []
    if kind == "call" and to == "csg":
        return _check_team(config, app, reach, field, target)
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
        return [_error("bad_action", field, f"call to {to!r}; use user, phnum, other, sip or csg")]
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


def _check_team(
    config: CallConfig, app: AppConfig, reach: Reachability, field: str, team_id: str
) -> list[Problem]:
    """A team: it exists, has members who can be reached, and no_answer leads on (not back)."""
    team = config.team(app.account_id, team_id)
    if team is None or team.account_id != app.account_id:
        return [_error("team_not_found", field, f"no team {team_id!r} in this account")]
    problems: list[Problem] = []
    members = [config.user(app.account_id, m) for m in team.members]
    present = [u for u in members if u is not None and u.account_id == app.account_id]
    if not present:
        problems.append(
            Problem(
                "warning",
                "team_empty",
                field,
                f"team {team.name!r} has no members: callers go straight to its no_answer",
            )
        )
    for user in present:
        route = route_transfer("user", user.user_id, user, reach)
        if not route.reachable:
            # Phones register and unregister: true now, perhaps not in a minute.
            problems.append(
                Problem(
                    "warning",
                    "member_unreachable",
                    field,
                    f"{user.name or user.user_id} ({user.user_id}) of team {team.name!r} is not "
                    f"reachable now: {route.detail}; they are skipped",
                )
            )
    if team.no_answer.in_use:
        loop = _no_answer_loop(config, team)
        if loop:
            problems.append(
                Problem(
                    "warning",
                    "no_answer_loop",
                    f"{field} (team {team.name!r} no_answer)",
                    "when nobody answers, the call comes back to ring again with no menu in "
                    "between: " + " → ".join(loop),
                )
            )
        elif team.no_answer.action == "call" and team.no_answer.to == "csg":
            other = config.team(app.account_id, team.no_answer.id)
            if other is None or other.account_id != app.account_id:
                problems.append(
                    _error(
                        "team_not_found",
                        f"{field} (team {team.name!r} no_answer)",
                        f"no team {team.no_answer.id!r} in this account",
                    )
                )
        else:
            where = f"{field} (team {team.name!r} no_answer)"
            problems.extend(_check_action(config, app, reach, where, team.no_answer))
    return problems


def _no_answer_loop(config: CallConfig, team: TeamConfig) -> list[str]:
    """The teams and announcements a team's no_answer leads back through to itself, if any."""
    path = [f"team {team.name or team.team_id}"]
    seen = {("team", team.team_id)}
    action = team.no_answer
    for _ in range(50):
        if action.action == "call" and action.to == "csg":
            nxt = config.team(team.account_id, action.id)
            if nxt is None or nxt.account_id != team.account_id:
                return []
            path.append(f"team {nxt.name or nxt.team_id}")
            if ("team", nxt.team_id) in seen:
                return path
            seen.add(("team", nxt.team_id))
            action = nxt.no_answer
        elif action.action == "connect":
            app = config.app(action.id)
            if app is None or app.account_id != team.account_id or not app.is_announcement:
                return []  # a menu (or a mailbox) in between: the caller is not stuck
            path.append(f"announcement {app.name or app.app_id}")
            if ("app", app.app_id) in seen:
                return []
            seen.add(("app", app.app_id))
            action = app.final_action
        else:
            return []
    return []


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
