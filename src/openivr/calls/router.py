"""Which voice app (or person) an incoming INVITE reaches."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.store.models import PhoneNumber, User, VoiceApp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Destination:
    """Where a call goes: a voice app, or straight to a user / number / SIP address."""

    account_id: str
    app_id: str = ""
    direct_kind: str = ""  # user | phnum | sip | csg (a team) when a number connects past any app
    direct_target: str = ""


def _digits(key: str) -> str | None:
    bare = key[1:] if key.startswith("+") else key
    return bare if bare.isdigit() and 6 <= len(bare) <= 15 else None


async def _app_destination(db: AsyncSession, app: VoiceApp | None) -> Destination | None:
    if app is None or app.app_type == "sysprompt":
        return None
    return Destination(account_id=app.account_id, app_id=app.app_id)


async def resolve(
    sessions: async_sessionmaker[AsyncSession], route_key: str, caller: str
) -> Destination | None:
    """A phone number of an account, an app id, or a shortcode; None when nothing matches."""
    async with sessions() as db:
        digits = _digits(route_key)
        if digits is not None:
            number = await db.get(PhoneNumber, "+" + digits)
            if number is not None:
                kind, dest = number.connect_to_type, number.connect_to
                if kind == "app":
                    app_id = dest.get("app_id") if isinstance(dest, dict) else dest
                    return await _app_destination(db, await db.get(VoiceApp, str(app_id)))
                if kind in ("user", "phnum", "sip", "csg") and dest:
                    return Destination(number.account_id, direct_kind=kind, direct_target=str(dest))
                log.info("number %s is not connected to anything", number.phnum)
                return None
        if route_key.startswith("VA"):
            return await _app_destination(db, await db.get(VoiceApp, route_key))
        if route_key.startswith("*"):
            # Shortcodes are per account: a registered user dials their own account's codes;
            # anyone else reaches a shortcode only when a single account has it.
            owner = await db.get(User, caller) if caller.isdigit() else None
            query = select(VoiceApp).where(VoiceApp.shortcode == route_key)
            if owner is not None:
                query = query.where(VoiceApp.account_id == owner.account_id)
            apps = (await db.scalars(query.limit(2))).all()
            if len(apps) == 1:
                return await _app_destination(db, apps[0])
    return None
