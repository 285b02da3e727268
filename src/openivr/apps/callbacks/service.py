"""A callback request checked against the account: who each party is, whether they can be rung
now, and the caller ids shown.

Whether a party can be rung is the transfers' own rule (`engine.routing.route_transfer`) with
what the node knows now (its trunk, the phones registered), so a callback refuses exactly
what a transfer would fail on, before any phone rings.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.apps import validation as v
from openivr.apps.callbacks import schema
from openivr.apps.callbacks.schema import CallbackPlan, Party
from openivr.apps.validation import EMAIL, FieldError
from openivr.engine.config import UserConfig
from openivr.engine.routing import Reachability, route_transfer
from openivr.store import ids
from openivr.store.models import PhoneNumber, User
from openivr.store.registrations import live_registrations

_KINDS = (
    "a phone number like +46701234567, a SIP address like sip:anna@pbx.example.com, "
    "or a user of this account (user id or e-mail)"
)


class CallbackPlanner:
    """Checks callback requests of one account, through one database session."""

    def __init__(self, db: AsyncSession, account_id: str, *, trunk: bool, sip_domain: str):
        self.db = db
        self.account_id = account_id
        self.trunk = trunk  # whether this node calls numbers (--sip-trunk)
        self.sip_domain = sip_domain.lower()

    async def plan(self, requested_by: str, body: dict[str, Any]) -> CallbackPlan:
        """The callback a request asks for; FieldError naming the field when it cannot be."""
        app_id = body.get("app_id")
        client = "" if app_id is None else v.text("app_id", app_id, 200, allow_empty=True)
        first = await self.party("call1", body.get("call1"))
        second = await self.party("call2", body.get("call2"))
        if (first.kind, first.value) == (second.kind, second.value):
            raise FieldError("call2", f"is the same party as call1 ({second.given})")
        show_1 = await self.caller_id("show_1", body.get("show_1"), requested_by)
        show_2 = await self.caller_id("show_2", body.get("show_2"), requested_by)
        return CallbackPlan(
            session_id=ids.callback_session_id(),
            account_id=self.account_id,
            requested_by=requested_by,
            app_id=client,
            first=first,
            second=second,
            show_1=show_1,
            show_2=show_2,
        )

    async def party(self, field: str, value: Any) -> Party:
        """Who call1 or call2 names, checked to be reachable now."""
        text = schema.party_text(field, value)
        if text.startswith("+"):
            number = schema.phone_number(field, text)
            route = route_transfer("phnum", number, None, Reachability(trunk=self.trunk))
            if not route.reachable:
                raise FieldError(field, route.detail)
            return Party(field, "phnum", number, text)
        if text.isdigit():
            user = await self._user_by_id(text)
            if user is None:
                raise FieldError(
                    field,
                    f"{text} is no user id of this account (phone numbers are written with "
                    "their leading +, e.g. +46701234567)",
                    "unknown_reference",
                )
            return await self._reachable_user(field, user, text)
        lowered = text.lower()
        if lowered.startswith(("sip:", "sips:")):
            uri = schema.sip_address(field, text)
            user_part, _, host = uri.split(":", 1)[1].partition("@")
            host = host.split(";", 1)[0].split(":", 1)[0].lower()
            if host == self.sip_domain:
                # This node's own domain: the address of a user's registered phones.
                user = await self._user_by_id(user_part)
                if user is None:
                    raise FieldError(
                        field,
                        f"{uri} is on this node's SIP domain but names no user of this account",
                        "unknown_reference",
                    )
                return await self._reachable_user(field, user, text)
            return Party(field, "sip", uri, text)
        if "@" in text and EMAIL.match(text):
            user = await self.db.scalar(
                select(User).where(
                    User.account_id == self.account_id, func.lower(User.email) == lowered
                )
            )
            if user is None:
                raise FieldError(
                    field,
                    f"no user of this account has the e-mail {text!r} (a SIP address is "
                    f"written with sip:, e.g. sip:{text})",
                    "unknown_reference",
                )
            return await self._reachable_user(field, user, text)
        raise FieldError(field, f"must be {_KINDS}, got {text!r}")

    async def _user_by_id(self, user_id: str) -> User | None:
        user = await self.db.get(User, user_id)
        return user if user is not None and user.account_id == self.account_id else None

    async def _reachable_user(self, field: str, user: User, given: str) -> Party:
        registered = (
            frozenset([user.user_id])
            if await live_registrations(self.db, user.user_id)
            else frozenset()
        )
        config = UserConfig(user.user_id, user.account_id, sip_uri=user.sip_uri, phnum=user.phnum)
        route = route_transfer(
            "user", user.user_id, config, Reachability(trunk=self.trunk, registered=registered)
        )
        if not route.reachable:
            raise FieldError(field, f"user {user.user_id} cannot be rung now: {route.detail}")
        return Party(field, "user", user.user_id, given)

    async def caller_id(self, field: str, value: Any, requested_by: str) -> str:
        """The number show_1 or show_2 asks for (one of the account's), or for automatic a
        number assigned to the user who asked, else the account's first; `anonymous` when the
        account has none."""
        asked = schema.caller_id_text(field, value)
        numbers = list(
            await self.db.scalars(
                select(PhoneNumber)
                .where(PhoneNumber.account_id == self.account_id)
                .order_by(PhoneNumber.created_at, PhoneNumber.phnum)
            )
        )
        if asked is not None:
            if any(n.phnum == asked for n in numbers):
                return asked
            raise FieldError(
                field,
                f"{asked} is not a phone number of this account; use 'automatic' or one of "
                f"{', '.join(n.phnum for n in numbers) or 'its numbers (it has none yet)'}",
            )
        own = [
            n.phnum
            for n in numbers
            if n.connect_to_type == "user" and str(n.connect_to) == requested_by
        ]
        if own:
            return own[0]
        return numbers[0].phnum if numbers else schema.ANONYMOUS
