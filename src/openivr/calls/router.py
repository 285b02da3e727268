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
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.engine.vocabulary import RECORDING_SHORTCODE
from openivr.guard.addresses import Networks
from openivr.store.models import Account, PhoneNumber, User, VoiceApp
from openivr.store.registrations import live_registrations
from openivr.store.snapshot import AccountSnapshot, SnapshotCache

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


@dataclass(frozen=True)
class Resolved:
    """What `lookup` found, and the configuration revision of its account it holds for: a
    destination read after (or with) that revision, so any later change moves the revision
    (store/revision.py). `revision` is None when the answer must not be reused: nothing found,
    the recorder (registrations change without a revision), a shortcode reached from outside
    (any account's apps decide it), an app of another account than its number."""

    destination: Destination | None
    revision: int | None = None


def _app_destination(app: VoiceApp | None) -> Destination | None:
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


Owned = TypeVar("Owned", PhoneNumber, VoiceApp, User)


async def _with_revision(
    db: AsyncSession, model: type[Owned], column: Any, key: str
) -> tuple[Owned | None, int | None]:
    """A row and its account's config revision, read in one statement (so the revision is no
    older than the row)."""
    found = (
        await db.execute(
            select(model, Account.config_revision)
            .join(Account, Account.account_id == model.account_id)
            .where(column == key)
        )
    ).first()
    return (found[0], int(found[1])) if found is not None else (None, None)


async def resolve(
    sessions: async_sessionmaker[AsyncSession],
    route_key: str,
    caller: str,
    sender: Sender | None = None,
    trusted: Networks | None = None,
) -> Destination | None:
    """A phone number of an account, an app id, a shortcode, or the recorder for a registered
    user dialling the recording shortcode; None when nothing matches."""
    return (await lookup(sessions, route_key, caller, sender, trusted)).destination


async def lookup(
    sessions: async_sessionmaker[AsyncSession],
    route_key: str,
    caller: str,
    sender: Sender | None = None,
    trusted: Networks | None = None,
) -> Resolved:
    """`resolve`, with the revision its answer holds for (see `Resolved`)."""
    async with sessions() as db:
        if route_key == RECORDING_SHORTCODE:
            # Never an app's: apps skip this shortcode (store/voiceapps.py).
            return Resolved(await _recorder(db, caller, sender, trusted))
        digits = _digits(route_key)
        if digits is not None:
            number, revision = await _with_revision(
                db, PhoneNumber, PhoneNumber.phnum, "+" + digits
            )
            if number is not None:
                kind, dest = number.connect_to_type, number.connect_to
                if kind == "app":
                    app_id = dest.get("app_id") if isinstance(dest, dict) else dest
                    found = _app_destination(await db.get(VoiceApp, str(app_id)))
                    same = found is not None and found.account_id == number.account_id
                    return Resolved(found, revision if same else None)
                if kind in ("user", "phnum", "sip", "csg") and dest:
                    direct = Destination(
                        number.account_id, direct_kind=kind, direct_target=str(dest)
                    )
                    return Resolved(direct, revision)
                log.info("number %s is not connected to anything", number.phnum)
                return Resolved(None)
        if route_key.startswith("VA"):
            app, revision = await _with_revision(db, VoiceApp, VoiceApp.app_id, route_key)
            found = _app_destination(app)
            return Resolved(found, revision if found is not None else None)
        if route_key.startswith("*"):
            # Shortcodes are per account: a registered user dials their own account's codes;
            # anyone else reaches a shortcode only when a single account has it.
            owner, revision = (
                await _with_revision(db, User, User.user_id, caller)
                if caller.isdigit()
                else (None, None)
            )
            query = select(VoiceApp).where(VoiceApp.shortcode == route_key)
            if owner is not None:
                query = query.where(VoiceApp.account_id == owner.account_id)
            apps = (await db.scalars(query.limit(2))).all()
            if len(apps) == 1:
                found = _app_destination(apps[0])
                return Resolved(found, revision if owner is not None and found else None)
    return Resolved(None)


class Routes:
    """Where calls go, each destination reused while its account's configuration revision
    holds (one node's view).

    A destination found before is checked by the call's own snapshot read (`SnapshotCache`:
    the revision with the mailbox counts, one fresh read), so a known number costs that one
    read in all instead of its look-up and then the snapshot's. Any change on any node that
    could move a destination (a number, an app, a user, in the number's or app's account)
    bumps that revision in its own transaction (store/revision.py), and `lookup` reads the
    revision no later than the rows it answers from, so a destination is never reused past a
    change. Keyed by the number dialled, and for shortcodes by the caller too (a registered
    user reaches their own account's); only answers `lookup` says may be reused are kept.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        snapshots: SnapshotCache,
        trusted: Networks | None = None,
        size: int = 10_000,
    ):
        self.sessions = sessions
        self.snapshots = snapshots
        self.trusted = trusted
        self.size = size
        self._entries: OrderedDict[tuple[str, str], tuple[Destination, int]] = OrderedDict()

    async def find(
        self, route_key: str, caller: str, sender: Sender | None = None
    ) -> tuple[Destination | None, AccountSnapshot | None]:
        """Where the call goes, and its account's snapshot when that was read on the way."""
        key = (route_key, caller if route_key.startswith("*") else "")
        known = self._entries.get(key)
        if known is not None:
            dest, revision = known
            snapshot = await self.snapshots.current(self.sessions, dest.account_id)
            if snapshot.account is not None and snapshot.account.config_revision == revision:
                self._entries.move_to_end(key)
                return dest, snapshot
        found = await lookup(self.sessions, route_key, caller, sender, self.trusted)
        if found.destination is None or found.revision is None:
            self._entries.pop(key, None)
        else:
            self._entries[key] = (found.destination, found.revision)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return found.destination, None
