"""Creating accounts with their admin user and default apps."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.apps import validation as v
from openivr.apps.voiceapps.schema import DEFAULTS
from openivr.security import hash_password_off_loop
from openivr.store import ids
from openivr.store.models import Account, User
from openivr.store.voiceapps import create_app


class EmailTaken(Exception):
    """Another user already logs in with this e-mail address."""


@dataclass(frozen=True)
class NewAccount:
    """The ids of a freshly created account and its admin user."""

    account_id: str
    user_id: str


async def next_extension(db: AsyncSession, account_id: str) -> str:
    """The next free extension of an account, from 100 upwards."""
    rows = (await db.scalars(select(User.extension).where(User.account_id == account_id))).all()
    taken = {int(x) for x in rows if x.isdigit()}
    n = 100
    while n in taken:
        n += 1
    return str(n)


async def email_taken(db: AsyncSession, email: str) -> bool:
    """Whether a user already has this login e-mail."""
    count = await db.scalar(select(func.count()).select_from(User).where(User.email == email))
    return bool(count)


async def create_account(
    sessions: async_sessionmaker[AsyncSession], email: str, password: str, name: str | None = None
) -> NewAccount:
    """An account, its admin user and the three default apps, in one transaction."""
    email = v.email("email", email)
    if len(password) < 6:
        raise v.FieldError("password", "must be at least 6 characters")
    password_hash = await hash_password_off_loop(password)
    async with sessions() as db, db.begin():
        if await email_taken(db, email):
            raise EmailTaken(email)
        account = Account(
            account_id=ids.numeric_id(9), name=name or email, language="en", timezone="UTC"
        )
        db.add(account)
        await db.flush()
        user = User(
            user_id=ids.numeric_id(10),
            account_id=account.account_id,
            email=email,
            password_hash=password_hash,
            fname=(name or email.split("@")[0]),
            lname="",
            user_type="admin",
            extension="100",
        )
        db.add(user)
        await db.flush()
        ivr = copy.deepcopy(DEFAULTS["ivr"])
        main_menu = await create_app(db, account.account_id, "ivr", "Main menu", ivr)
        mailbox = dict(DEFAULTS["mailbox"])
        mailbox.update(deliver_to="user", deliver_to_details=user.user_id)
        box = await create_app(db, account.account_id, "mailbox", "Voice Mail", mailbox)
        await create_app(
            db, account.account_id, "sysprompt", "System Prompt", dict(DEFAULTS["sysprompt"])
        )
        # Pressing 1 in the default menu leaves a voicemail.
        ivr = copy.deepcopy(ivr)
        ivr["menu"]["digit_1"] = {"action": "connect", "to": "app", "id": box.app_id}
        main_menu.config = ivr
    return NewAccount(account.account_id, user.user_id)
