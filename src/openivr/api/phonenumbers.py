"""Phone numbers the server answers for, and where each one's calls go."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.api.deps import AccountAuth, Db
from openivr.api.docs import Loose, answers
from openivr.api.envelope import format_date, success
from openivr.api.errors import ApiError, not_found
from openivr.apps import validation as v
from openivr.store.models import PhoneNumber, Team, User, VoiceApp

router = APIRouter(tags=["phonenumbersubscription"])
CONNECT_TYPES = ("user", "phnum", "sip", "app", "csg", "")
_CONNECT_LIST = "user, phnum, sip, app or csg (a team)"


class PhoneNumberIn(BaseModel):
    """A number to add, or its connection to change."""

    model_config = ConfigDict(extra="allow")
    phnum: str | None = None
    connect_to_type: str | None = None
    connect_to: dict[str, Any] | str | int | None = None
    record_calls: StrictStr | StrictBool | None = None  # yes/no: with call_recording `selected`


# What a GET shows and a body may carry back unchanged (`phnum` only on a PUT: it names the
# number in the path).
SHOWN = ("account_id", "create_date")


_WRITABLE = tuple(PhoneNumberIn.model_fields)


class PhoneNumberOut(Loose):
    """A phone number as the API shows it."""

    phnum: str | None = None
    connect_to_type: str | None = None
    record_calls: str | None = None


def number_view(n: PhoneNumber) -> dict[str, Any]:
    """The public shape of a phone number."""
    return {
        "phnum": n.phnum,
        "account_id": n.account_id,
        "connect_to_type": n.connect_to_type,
        "connect_to": n.connect_to if n.connect_to is not None else "",
        "record_calls": n.record_calls,
        "create_date": format_date(n.created_at),
    }


def normalise_number(raw: str) -> str:
    """A number from a path or body, '+' optional, as E.164."""
    cleaned = raw.strip().replace(" ", "")
    if not cleaned.startswith("+"):
        cleaned = "+" + cleaned
    return cleaned


async def _load(db: AsyncSession, account_id: str, phnum: str) -> PhoneNumber:
    number = await db.get(PhoneNumber, normalise_number(phnum))
    if number is None or number.account_id != account_id:
        raise not_found("phone number", phnum)
    return number


async def _connection(db: AsyncSession, account_id: str, kind: str, dest: Any) -> Any:
    if kind == "":
        return None
    if kind == "user":
        user = await db.get(User, str(dest))
        if user is None or user.account_id != account_id:
            raise v.FieldError(
                "connect_to", f"no user {dest!r} in this account", "unknown_reference"
            )
        return user.user_id
    if kind == "phnum":
        return v.e164("connect_to", dest)
    if kind == "sip":
        return v.sip_uri("connect_to", dest)
    if kind == "csg":
        team_id = dest.get("team_id") if isinstance(dest, dict) else dest
        team = await db.get(Team, str(team_id)) if isinstance(team_id, str | int) else None
        if team is None or team.account_id != account_id:
            raise v.FieldError(
                "connect_to", f"no team {team_id!r} in this account", "unknown_reference"
            )
        return team.team_id
    app_id = dest.get("app_id") if isinstance(dest, dict) else dest
    app = await db.get(VoiceApp, str(app_id)) if isinstance(app_id, str | int) else None
    if app is None or app.account_id != account_id:
        raise v.FieldError(
            "connect_to", f"no voice app {app_id!r} in this account", "unknown_reference"
        )
    if app.app_type == "sysprompt":
        raise v.FieldError("connect_to", "a sysprompt app cannot take calls")
    return {"app_type": app.app_type, "app_id": app.app_id}


@router.get(
    "/account/{account_id}/phonenumbersubscription", responses=answers(list[PhoneNumberOut] | str)
)
async def list_numbers(request: Request, account_id: str, who: AccountAuth, db: Db) -> JSONResponse:
    """The account's numbers; "No entries found" when there are none (clients rely on it)."""
    numbers = (
        await db.scalars(
            select(PhoneNumber)
            .where(PhoneNumber.account_id == account_id)
            .order_by(PhoneNumber.phnum)
        )
    ).all()
    if not numbers:
        return success(request, "No entries found")
    return success(request, [number_view(n) for n in numbers])


@router.post(
    "/account/{account_id}/phonenumbersubscription", responses=answers(PhoneNumberOut, 409)
)
async def add_number(
    request: Request, account_id: str, body: PhoneNumberIn, who: AccountAuth, db: Db
) -> JSONResponse:
    """Add a number the server answers for (optionally connected at once)."""
    v.known_fields(body.model_dump(exclude_unset=True), _WRITABLE, SHOWN)
    if not body.phnum:
        raise ApiError("missing_field", "phnum: is required, e.g. +46812345678")
    phnum = v.e164("phnum", normalise_number(body.phnum))
    if await db.get(PhoneNumber, phnum) is not None:
        raise ApiError("duplicate", f"phnum: {phnum} is already in use")
    kind = body.connect_to_type or ""
    if kind not in CONNECT_TYPES:
        raise v.FieldError("connect_to_type", f"must be {_CONNECT_LIST}")
    record = v.yes_no("record_calls", body.record_calls) if body.record_calls is not None else "no"
    number = PhoneNumber(
        phnum=phnum,
        account_id=account_id,
        connect_to_type=kind,
        connect_to=await _connection(db, account_id, kind, body.connect_to),
        record_calls=record,
    )
    db.add(number)
    await db.commit()
    return success(request, number_view(number))


@router.get(
    "/account/{account_id}/phonenumbersubscription/{phnum}", responses=answers(PhoneNumberOut)
)
async def get_number(
    request: Request, account_id: str, phnum: str, who: AccountAuth, db: Db
) -> JSONResponse:
    """One number ('+' optional in the path)."""
    return success(request, number_view(await _load(db, account_id, phnum)))


@router.put(
    "/account/{account_id}/phonenumbersubscription/{phnum}", responses=answers(PhoneNumberOut)
)
async def connect_number(
    request: Request, account_id: str, phnum: str, body: PhoneNumberIn, who: AccountAuth, db: Db
) -> JSONResponse:
    """Connect the number to a user, a number, a SIP address, a voice app or a team (csg), and
    say whether its calls are recorded (`record_calls`, with the account's `selected`)."""
    number = await _load(db, account_id, phnum)
    data = v.known_fields(
        body.model_dump(exclude_unset=True),
        ("connect_to_type", "connect_to", "record_calls"),
        ("phnum", *SHOWN),
        number_view(number),
    )
    if data.get("record_calls") is not None:
        number.record_calls = v.yes_no("record_calls", data["record_calls"])
        if "connect_to_type" not in data:  # only whether its calls are recorded changes
            await db.commit()
            return success(request, number_view(number))
    if "connect_to_type" not in data:
        raise ApiError("missing_field", f"connect_to_type: is required ({_CONNECT_LIST})")
    kind = data["connect_to_type"] or ""
    if kind not in CONNECT_TYPES:
        raise v.FieldError("connect_to_type", f"must be {_CONNECT_LIST}")
    if kind and data.get("connect_to") in (None, ""):
        raise ApiError("missing_field", "connect_to: is required")
    number.connect_to = await _connection(db, account_id, kind, data.get("connect_to"))
    number.connect_to_type = kind
    await db.commit()
    return success(request, number_view(number))


@router.delete(
    "/account/{account_id}/phonenumbersubscription/{phnum}", responses=answers(PhoneNumberOut)
)
async def delete_number(
    request: Request, account_id: str, phnum: str, who: AccountAuth, db: Db
) -> JSONResponse:
    """Stop answering a number."""
    number = await _load(db, account_id, phnum)
    view = number_view(number)
    await db.delete(number)
    await db.commit()
    return success(request, view)
