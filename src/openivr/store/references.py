"""Who points at a user, app, prompt, team or schedule: checked before deletes, cleared on
forced deletes. A deleted user also leaves every team (membership is not a reference).

Every delete goes through `release`: 409 `in_use` naming the referrers unless `?force=true`,
which clears them instead.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.apps.validation import Refusal
from openivr.apps.voiceapps import schema as va
from openivr.store.models import PhoneNumber, Team, utcnow
from openivr.store.voiceapps import account_apps, touch

# What a setting may point at.
Kind = Literal["user", "app", "prompt", "team", "schedule"]


@dataclass(frozen=True, slots=True)
class Referrer:
    """A setting that points at an object: the resource holding it and the field."""

    resource: Literal["voiceapp", "team", "phonenumbersubscription"]
    id: str
    name: str = ""
    field: str = ""

    def __str__(self) -> str:
        if self.resource == "phonenumbersubscription":
            return f"phonenumbersubscription {self.id}"
        return f"{self.resource} {self.id} ({self.name}) {self.field}"


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


async def referrers(db: AsyncSession, account_id: str, kind: Kind, target: str) -> list[Referrer]:
    """The settings that point at the object (an object's own settings aside)."""
    found: list[Referrer] = []
    for app in await account_apps(db, account_id):
        if app.app_id == target and kind == "app":
            continue
        for field, act in va.references(app.app_type, app.config):
            if va.points_to(act, kind, target):
                found.append(Referrer("voiceapp", app.app_id, app.name, field))
        if (
            kind == "user"
            and app.app_type == "mailbox"
            and va.mailbox_user_reference(app.config, target)
        ):
            found.append(Referrer("voiceapp", app.app_id, app.name, "deliver_to"))
        if kind == "schedule" and app.app_type == "ivr" and va.uses_schedule(app.config, target):
            found.append(Referrer("voiceapp", app.app_id, app.name, "open_hours"))
    for team in await account_teams(db, account_id):
        if kind == "team" and team.team_id == target:
            continue
        if va.points_to(team.config.get("no_answer") or {}, kind, target):
            found.append(Referrer("team", team.team_id, team.name, "no_answer"))
    numbers = (
        await db.scalars(select(PhoneNumber).where(PhoneNumber.account_id == account_id))
    ).all()
    for num in numbers:
        if _number_points_to(num, kind, target):
            found.append(Referrer("phonenumbersubscription", num.phnum))
    return found


async def release(
    db: AsyncSession,
    account_id: str,
    targets: Sequence[tuple[Kind, str]],
    *,
    force: bool,
    in_use: str,
    owner: str | None = None,
) -> list[Referrer]:
    """Free objects about to be deleted: Refusal `in_use` ("<in_use>: <referrers>") while
    settings point at any of them, unless `force`, which clears those settings (no commit).
    Settings of the voice app `owner` (itself being deleted) do not count. The referrers."""
    found: list[Referrer] = []
    for kind, target in targets:
        found += [
            ref
            for ref in await referrers(db, account_id, kind, target)
            if not (ref.resource == "voiceapp" and ref.id == owner)
        ]
    if found and not force:
        raise Refusal("in_use", f"{in_use}: " + "; ".join(str(ref) for ref in found))
    if found:
        for kind, target in targets:
            await clear_referrers(db, account_id, kind, target)
    return found


async def clear_referrers(db: AsyncSession, account_id: str, kind: Kind, target: str) -> None:
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
