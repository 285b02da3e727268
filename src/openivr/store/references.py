"""Who points at a user, app or prompt: checked before deletes, cleared on forced deletes."""

from __future__ import annotations

import copy

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.apps import voiceapp as va
from openivr.store.models import PhoneNumber
from openivr.store.voiceapps import account_apps, touch


def _number_points_to(num: PhoneNumber, kind: str, target: str) -> bool:
    if kind == "app" and num.connect_to_type == "app":
        dest = num.connect_to
        app_id = dest.get("app_id") if isinstance(dest, dict) else dest
        return app_id == target
    return kind == "user" and num.connect_to_type == "user" and num.connect_to == target


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
    numbers = (
        await db.scalars(select(PhoneNumber).where(PhoneNumber.account_id == account_id))
    ).all()
    for num in numbers:
        if _number_points_to(num, kind, target):
            num.connect_to_type = ""
            num.connect_to = None
