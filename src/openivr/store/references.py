"""Who points at a user, app, prompt, team or schedule: checked before deletes, cleared on
forced deletes. A deleted user also leaves every team (membership is not a reference)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.apps import voiceapp as va
from openivr.store.models import PhoneNumber, Team, utcnow
from openivr.store.voiceapps import account_apps, touch

# What a phone number's connect_to_type is when it connects to each kind of object.
_NUMBER_KINDS = {"user": "user", "team": "csg"}


def _number_points_to(num: PhoneNumber, kind: str, target: str) -> bool:
    if kind == "app" and num.connect_to_type == "app":
        dest = num.connect_to
        app_id = dest.get("app_id") if isinstance(dest, dict) else dest
        return app_id == target
    wanted = _NUMBER_KINDS.get(kind)
    return wanted is not None and num.connect_to_type == wanted and num.connect_to == target


async def account_teams(db: AsyncSession, account_id: str) -> Sequence[Team]:
    """All teams of an account, oldest first."""
    return (
        await db.scalars(
            select(Team)
            .where(Team.account_id == account_id)
            .order_by(Team.created_at, Team.team_id)
        )
    ).all()


def _touch_team(team: Team) -> None:
    team.version += 1
    team.updated_at = utcnow()


async def referrers(db: AsyncSession, account_id: str, kind: str, target: str) -> list[str]:
    """Human-readable list of the settings that point at the object."""
    found: list[str] = []
    for app in await account_apps(db, account_id):
        if app.app_id == target and kind == "app":
            continue
        for field, act in va.references(app.app_type, app.config):
            if va.points_to(act, kind, target):
                found.append(f"voiceapp {app.app_id} ({app.name}) {field}")
        if (
            kind == "user"
            and app.app_type == "mailbox"
            and va.mailbox_user_reference(app.config, target)
        ):
            found.append(f"voiceapp {app.app_id} ({app.name}) deliver_to")
        if kind == "schedule" and app.app_type == "ivr" and va.uses_schedule(app.config, target):
            found.append(f"voiceapp {app.app_id} ({app.name}) open_hours")
    for team in await account_teams(db, account_id):
        if kind == "team" and team.team_id == target:
            continue
        if va.points_to(team.config.get("no_answer") or {}, kind, target):
            found.append(f"team {team.team_id} ({team.name}) no_answer")
    numbers = (
        await db.scalars(select(PhoneNumber).where(PhoneNumber.account_id == account_id))
    ).all()
    for num in numbers:
        if _number_points_to(num, kind, target):
            found.append(f"phonenumbersubscription {num.phnum}")
    return found


async def clear_referrers(db: AsyncSession, account_id: str, kind: str, target: str) -> None:
    """Reset every setting that points at the object (no commit)."""
    for app in await account_apps(db, account_id):
        cfg = copy.deepcopy(app.config)
        if va.clear_references(app.app_type, cfg, kind, target):
            app.config = cfg
            touch(app)
    for team in await account_teams(db, account_id):
        if va.points_to(team.config.get("no_answer") or {}, kind, target):
            team.config = dict(team.config, no_answer=dict(va.EMPTY_ACTION))
            _touch_team(team)
    numbers = (
        await db.scalars(select(PhoneNumber).where(PhoneNumber.account_id == account_id))
    ).all()
    for num in numbers:
        if _number_points_to(num, kind, target):
            num.connect_to_type = ""
            num.connect_to = None


async def leave_teams(db: AsyncSession, account_id: str, user_id: str) -> list[str]:
    """Take a user out of every team of the account (no commit); the teams they left."""
    left: list[str] = []
    for team in await account_teams(db, account_id):
        members = list(team.config.get("members") or [])
        if user_id in members:
            members.remove(user_id)
            team.config = dict(team.config, members=members)
            _touch_team(team)
            left.append(team.team_id)
    return left
