"""Which voice app (or person) an incoming INVITE reaches, or whether it reaches the recorder.

The recording shortcode (*22) reaches the recorder only from a phone registered as a user of
the account: the INVITE's From user is a user id, and the INVITE came from the very address,
port and transport one of that user's live registrations came from (the phone that answered
the digest challenge of REGISTER). Anyone else gets what a wrong number gets (404): callers
from outside, phones not registered, a From naming a user the sender did not register as, and
requests relayed by a trusted proxy (a balancer or trunk carries many callers, so its address
proves nothing about which one sent the call).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.engine.vocabulary import RECORDING_SHORTCODE
from openivr.guard.addresses import Networks
from openivr.store.models import PhoneNumber, User, VoiceApp
from openivr.store.registrations import live_registrations

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Destination:
    """Where a call goes: a voice app, or straight to a user / number / SIP address."""

    account_id: str
    app_id: str = ""
    direct_kind: str = ""  # user | phnum | sip | csg (a team) when a number connects past any app
    direct_target: str = ""
    recorder_user: str = ""  # a user recording prompts by phone (the recording shortcode)


@dataclass(frozen=True)
class Sender:
    """Where an INVITE came from: its transport source and transport (UDP, TCP, TLS)."""

    source: tuple[str, int]
    transport: str = "UDP"


def _digits(key: str) -> str | None:
    bare = key[1:] if key.startswith("+") else key
    return bare if bare.isdigit() and 6 <= len(bare) <= 15 else None


async def _app_destination(db: AsyncSession, app: VoiceApp | None) -> Destination | None:
    if app is None or app.app_type == "sysprompt":
        return None
    return Destination(account_id=app.account_id, app_id=app.app_id)


async def _recorder(
    db: AsyncSession, caller: str, sender: Sender | None, trusted: Networks | None
) -> Destination | None:
    """The recorder for a phone registered as a user (the rule at the top); None otherwise."""
    if sender is None or not caller.isdigit():
        return None
    if trusted is not None and sender.source[0] in trusted:
        return None
    user = await db.get(User, caller)
    if user is None:
        return None
    source = f"{sender.source[0]}:{sender.source[1]}"
    for row in await live_registrations(db, user.user_id):
        if row.source == source and row.transport == sender.transport:
            return Destination(user.account_id, recorder_user=user.user_id)
    return None


async def resolve(
    sessions: async_sessionmaker[AsyncSession],
    route_key: str,
    caller: str,
    sender: Sender | None = None,
    trusted: Networks | None = None,
) -> Destination | None:
    """A phone number of an account, an app id, a shortcode, or the recorder for a registered
    user dialling the recording shortcode; None when nothing matches."""
    async with sessions() as db:
        if route_key == RECORDING_SHORTCODE:
            # Never an app's: apps skip this shortcode (store/voiceapps.py).
            return await _recorder(db, caller, sender, trusted)
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
