"""Account resource: GET and PUT /account/{accountid}."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from openivr.api.deps import AccountAuth, Db, require_admin
from openivr.api.docs import Loose, answers
from openivr.api.envelope import format_date, success
from openivr.api.errors import not_found
from openivr.apps import validation as v
from openivr.store.models import Account
from openivr.store.recordings import RECORDING_MODES

router = APIRouter(tags=["account"])

CALLER_ID_MODES = ("caller", "dialed")


class AccountOut(Loose):
    """An account as the API shows it."""

    account_id: str | None = None
    name: str | None = None
    language: str | None = None
    timezone: str | None = None
    caller_id_mode: str | None = None
    call_recording: str | None = None
    create_date: str | None = None


class TimezoneDetails(BaseModel):
    """The hosted API's other way to name the time zone (its Python SDK sends it)."""

    model_config = ConfigDict(extra="allow")
    zone_id: str | None = None


class AccountIn(BaseModel):
    """Account settings a PUT may change; `account_id` and `create_date` may be sent back
    unchanged, other fields are refused."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None
    language: str | None = None
    timezone: str | None = None
    timezone_details: TimezoneDetails | None = None
    caller_id_mode: str | None = None
    call_recording: str | None = None


WRITABLE = ("name", "language", "timezone", "timezone_details", "caller_id_mode", "call_recording")
READ_ONLY = ("account_id", "create_date")


def account_view(a: Account) -> dict[str, str]:
    """The public shape of an account."""
    return {
        "account_id": a.account_id,
        "name": a.name,
        "language": a.language,
        "timezone": a.timezone,
        "caller_id_mode": a.caller_id_mode,
        "call_recording": a.call_recording,
        "create_date": format_date(a.created_at),
    }


@router.get("/account/{account_id}", responses=answers(AccountOut))
async def get_account(request: Request, account_id: str, who: AccountAuth, db: Db) -> JSONResponse:
    """The account's details."""
    account = await db.get(Account, account_id)
    if account is None:
        raise not_found("account", account_id)
    return success(request, account_view(account))


@router.put("/account/{account_id}", responses=answers(AccountOut))
async def put_account(
    request: Request, account_id: str, body: AccountIn, who: AccountAuth, db: Db
) -> JSONResponse:
    """Change the account's name, language, timezone, outgoing caller-id mode or which calls
    are recorded (`call_recording`)."""
    require_admin(who)
    account = await db.get(Account, account_id)
    if account is None:
        raise not_found("account", account_id)
    data = v.known_fields(
        body.model_dump(exclude_unset=True), WRITABLE, READ_ONLY, account_view(account)
    )
    details = data.get("timezone_details")
    if isinstance(details, dict) and data.get("timezone") is None:
        extra = set(details) - {"zone_id"}
        if extra:
            raise v.FieldError("timezone_details", f"unknown keys {sorted(extra)}; use zone_id")
        data["timezone"] = details.get("zone_id")
    before = account_view(account)
    if data.get("name") is not None:
        account.name = v.text("name", data["name"])
    if data.get("language") is not None:
        account.language = v.text("language", data["language"], 20)
    if data.get("timezone") is not None:
        account.timezone = v.timezone("timezone", data["timezone"])
    if data.get("caller_id_mode") is not None:
        if data["caller_id_mode"] not in CALLER_ID_MODES:
            raise v.FieldError("caller_id_mode", "must be 'caller' or 'dialed'")
        account.caller_id_mode = data["caller_id_mode"]
    if data.get("call_recording") is not None:
        mode = data["call_recording"]
        if mode not in RECORDING_MODES:
            raise v.FieldError("call_recording", f"must be one of {', '.join(RECORDING_MODES)}")
        account.call_recording = mode
    if account_view(account) != before:
        # Calls read the account (its time zone for opening hours, caller-id mode, recording)
        # from a snapshot every node keeps while the revision holds: any change moves it.
        account.config_revision = Account.config_revision + 1
    await db.commit()
    return success(request, account_view(account))
