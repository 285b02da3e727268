"""Users of an account: list, create, read, change, delete."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.api.deps import AccountAuth, Db, Principal, require_admin
from openivr.api.docs import Loose, answers
from openivr.api.envelope import format_date, success
from openivr.api.errors import ApiError, not_found
from openivr.apps import validation as v
from openivr.security import PasswordWorkBusy, hash_password_off_loop
from openivr.sip.digest import stored_sip_password
from openivr.store import ids
from openivr.store.accounts import email_taken, next_extension
from openivr.store.models import User
from openivr.store.references import leave_teams, release

router = APIRouter(tags=["user"])
EXTENSION = re.compile(r"^[1-9][0-9]{1,5}$")
USER_TYPES = ("regular", "admin")
READ_ONLY = ("user_id", "account_id", "has_sip_password", "create_date")


class UserOut(Loose):
    """A user as the API shows it."""

    user_id: str | None = None
    account_id: str | None = None
    user_fname: str | None = None
    user_lname: str | None = None
    email: str | None = None
    type: str | None = None
    extension: str | None = None
    phnum: str | None = None
    sip_uri: str | None = None
    record_calls: str | None = None


class UserIn(BaseModel):
    """Fields of a user that a POST or PUT may set; `user_id`, `account_id`,
    `has_sip_password` and `create_date` may be sent back unchanged, other fields are refused."""

    model_config = ConfigDict(extra="allow")
    user_fname: str | None = None
    user_lname: str | None = None
    email: str | None = None
    password: str | None = None
    type: str | None = None
    extension: StrictStr | StrictInt | None = None
    phnum: str | None = None
    sip_uri: str | None = None
    sip_password: str | None = None
    record_calls: StrictStr | StrictBool | None = None


WRITABLE = tuple(UserIn.model_fields)


def user_view(u: User) -> dict[str, Any]:
    """The public shape of a user (never the password)."""
    return {
        "user_id": u.user_id,
        "account_id": u.account_id,
        "user_fname": u.fname,
        "user_lname": u.lname,
        "email": u.email,
        "type": u.user_type,
        "extension": u.extension,
        "phnum": u.phnum,
        "sip_uri": u.sip_uri,
        "has_sip_password": bool(u.sip_password),
        "record_calls": u.record_calls,
        "create_date": format_date(u.created_at),
    }


async def _load(db: AsyncSession, account_id: str, user_id: str) -> User:
    user = await db.get(User, user_id)
    if user is None or user.account_id != account_id:
        raise not_found("user", user_id)
    return user


async def _apply(
    db: AsyncSession, user: User, data: dict[str, Any], who: Principal, sip_realm: str = ""
) -> None:
    if data.get("user_fname") is not None:
        user.fname = v.text("user_fname", data["user_fname"], 100, allow_empty=True)
    if data.get("user_lname") is not None:
        user.lname = v.text("user_lname", data["user_lname"], 100, allow_empty=True)
    if data.get("email") is not None:
        email = v.email("email", data["email"])
        if email != user.email and await email_taken(db, email):
            raise ApiError("duplicate", f"email: {email} is already used by another user")
        user.email = email
    if data.get("password") is not None:
        password = data["password"]
        if len(password) < 6 or len(password) > 200:
            raise v.FieldError("password", "must be 6 to 200 characters")
        try:
            user.password_hash = await hash_password_off_loop(password)
        except PasswordWorkBusy as exc:
            raise ApiError("busy", "password: too many password changes at once; retry") from exc
        # A new password ends every session of the old one.
        user.token_generation = (user.token_generation or 0) + 1
    if data.get("type") is not None:
        if data["type"] not in USER_TYPES:
            raise v.FieldError("type", "must be 'regular' or 'admin'")
        if data["type"] != user.user_type:
            require_admin(who)
            if user.user_type == "admin" and await _admin_count(db, user.account_id) <= 1:
                raise ApiError("required", "type: the account's last admin must stay admin")
        user.user_type = data["type"]
    if data.get("extension") is not None:
        ext = str(data["extension"]).strip()
        if not EXTENSION.match(ext):
            raise v.FieldError("extension", "must be 2 to 6 digits, not starting with 0")
        clash = await db.scalar(
            select(User.user_id).where(
                User.account_id == user.account_id,
                User.extension == ext,
                User.user_id != user.user_id,
            )
        )
        if clash:
            raise ApiError("duplicate", f"extension: {ext} is already user {clash}'s extension")
        user.extension = ext
    if data.get("phnum") is not None:
        user.phnum = v.e164("phnum", data["phnum"]) if data["phnum"] else ""
    if data.get("sip_uri") is not None:
        user.sip_uri = v.sip_uri("sip_uri", data["sip_uri"]) if data["sip_uri"] else ""
    if data.get("record_calls") is not None:
        flag = v.yes_no("record_calls", data["record_calls"])
        if flag != user.record_calls:
            require_admin(who)  # whose calls are recorded is the account's admins' choice
        user.record_calls = flag
    if data.get("sip_password") is not None:
        # Kept only as the digest HA1 MD5(user_id:realm:password) that the registrar checks
        # against; the realm is the SIP domain, so changing --sip-domain means setting SIP
        # passwords again (the old hashes no longer match).
        password = v.text("sip_password", data["sip_password"], 200, allow_empty=True)
        user.sip_password = stored_sip_password(user.user_id, sip_realm, password)


def _sip_realm(request: Request) -> str:
    """The digest realm of SIP registrations: the server's SIP domain."""
    return str(request.app.state.ctx.settings.sip_domain)


async def _admin_count(db: AsyncSession, account_id: str) -> int:
    count = await db.scalar(
        select(func.count())
        .select_from(User)
        .where(User.account_id == account_id, User.user_type == "admin")
    )
    return int(count or 0)


@router.get("/account/{account_id}/user", responses=answers(list[UserOut]))
async def list_users(request: Request, account_id: str, who: AccountAuth, db: Db) -> JSONResponse:
    """All users of the account."""
    users = (
        await db.scalars(
            select(User).where(User.account_id == account_id).order_by(User.created_at)
        )
    ).all()
    return success(request, [user_view(u) for u in users])


@router.post("/account/{account_id}/user", responses=answers(UserOut, 409))
async def create_user(
    request: Request, account_id: str, body: UserIn, who: AccountAuth, db: Db
) -> JSONResponse:
    """Create a user (admins only); an extension is assigned if none is given."""
    require_admin(who)
    data = v.known_fields(body.model_dump(exclude_unset=True), WRITABLE, READ_ONLY)
    for required in ("email", "password"):
        if not data.get(required):
            raise ApiError("missing_field", f"{required}: is required")
    email = v.email("email", data["email"])
    if await email_taken(db, email):
        raise ApiError("duplicate", f"email: {email} is already used by another user")
    user = User(
        user_id=ids.numeric_id(10),
        account_id=account_id,
        email=email,
        password_hash="",
        fname="",
        lname="",
        user_type="regular",
        extension=await next_extension(db, account_id),
        phnum="",
        sip_uri="",
        sip_password="",
        record_calls="no",
        token_generation=0,
    )
    await _apply(db, user, data, who, _sip_realm(request))
    db.add(user)
    await db.commit()
    return success(request, user_view(user))


@router.get("/account/{account_id}/user/{user_id}", responses=answers(UserOut))
async def get_user(
    request: Request, account_id: str, user_id: str, who: AccountAuth, db: Db
) -> JSONResponse:
    """One user."""
    return success(request, user_view(await _load(db, account_id, user_id)))


@router.put("/account/{account_id}/user/{user_id}", responses=answers(UserOut, 409))
async def put_user(
    request: Request, account_id: str, user_id: str, body: UserIn, who: AccountAuth, db: Db
) -> JSONResponse:
    """Change a user: admins change anyone, a regular user only themself."""
    if user_id != who.user_id:
        require_admin(who)
    user = await _load(db, account_id, user_id)
    data = v.known_fields(body.model_dump(exclude_unset=True), WRITABLE, READ_ONLY, user_view(user))
    await _apply(db, user, data, who, _sip_realm(request))
    await db.commit()
    return success(request, user_view(user))


@router.delete("/account/{account_id}/user/{user_id}", responses=answers(UserOut, 409))
async def delete_user(
    request: Request,
    account_id: str,
    user_id: str,
    who: AccountAuth,
    db: Db,
    force: Annotated[
        bool, Query(description="Clear menus and numbers pointing at the user")
    ] = False,
) -> JSONResponse:
    """Delete a user; 409 while menus or numbers still point at them, unless force=true.
    The user leaves every team they were a member of."""
    require_admin(who)
    user = await _load(db, account_id, user_id)
    if user.user_type == "admin" and await _admin_count(db, account_id) <= 1:
        raise ApiError("required", "the account's last admin cannot be deleted")
    await release(
        db, account_id, [("user", user_id)], force=force, in_use="the user is still used by"
    )
    await leave_teams(db, account_id, user_id)  # membership is not a reference: they leave
    view = user_view(user)
    await db.delete(user)
    await db.commit()
    return success(request, view)
