"""Call recordings (the hosted API's "Recorded calls"): list, read, delete, download.

Admins only. `?fields=file_access_details` and `?fields=voice_call_details` add to each
recording (a signed, expiring download link; the call's details) instead of selecting fields.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.api.deps import Auth, Ctx, Db, Principal, require_admin
from openivr.api.docs import Loose, answers
from openivr.api.envelope import format_date, success
from openivr.api.errors import ApiError, not_found
from openivr.apps.validation import MAX_INT, FieldError
from openivr.context import ServerContext
from openivr.store import recordings as store
from openivr.store.models import CallRecord, CallRecordingRow, User

router = APIRouter(tags=["call_recording"])
RESOURCE = "call_recording"
TYPES = ("voice_call",)
_DATE = re.compile(r"^(\d{8})T(\d{2}):(\d{2}):(\d{2})Z?$")


class FileOut(Loose):
    """A recording's file: `file_access_details` holds its download link when asked for."""

    type: str | None = None
    size: int | None = None
    file_id: str | None = None


class CallRecordingOut(Loose):
    """A call recording as the API shows it."""

    call_recording_id: str | None = None
    call_id: str | None = None
    type: str | None = None
    account_id: str | None = None
    user_id: str | None = None
    created_date: str | None = None
    status: str | None = None
    file: FileOut | None = None


def _date(name: str, value: str | None) -> datetime | None:
    """A YYYYMMDDTHH:MM:SSZ filter value (the Z may be left out); 400 naming the field."""
    if not value:
        return None
    match = _DATE.match(value.strip())
    try:
        if match is None:
            raise ValueError
        return datetime.strptime("".join(match.groups()), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        raise FieldError(name, f"{value!r} is not a date like 20261231T23:59:59Z") from None


def _download_path(row: CallRecordingRow) -> str:
    return f"/audio/recording/{row.account_id}/{row.recording_id}.wav"


def _wanted(request: Request) -> set[str]:
    fields = request.query_params.get("fields") or ""
    return {f.strip() for f in fields.split(",") if f.strip()}


async def _call_details(db: AsyncSession, row: CallRecordingRow) -> dict[str, Any]:
    """The recorded call as `voice_call_details` shows it (from its call record)."""
    call = await db.scalar(
        select(CallRecord)
        .where(CallRecord.call_id == row.call_id, CallRecord.account_id == row.account_id)
        .order_by(CallRecord.record_id.desc())
        .limit(1)
    )
    caller = call.from_number if call is not None else ""
    dialed = call.to_number if call is not None else ""
    from_user = await _user_named(db, row.account_id, caller)
    to_user = await db.get(User, row.user_id) if row.user_id else None
    started = call.started_at if call is not None else row.created_at
    # A call record is completed within a moment of the call's end; the recording's end
    # stands in meanwhile.
    ended = call.ended_at if call is not None and call.ended_at else row.ended_at
    return {
        "from": caller,
        "to": dialed,
        "codec": row.codec,
        "start_time": format_date(started),
        "end_time": format_date(ended) if ended is not None else "",
        "call_length": round((ended - started).total_seconds()) if ended is not None else 0,
        "from_type": "user" if from_user else _kind(caller),
        "from_name": _name(from_user),
        "caller_id": caller,
        "to_type": "user" if to_user else _kind(dialed),
        "to_name": _name(to_user),
        # OpenIVR's own: a callback the account placed is outbound, a call the node answered
        # inbound; empty while the call's record is not written yet.
        "direction": _direction(call),
    }


async def _user_named(db: AsyncSession, account_id: str, who: str) -> User | None:
    """The account's user a caller is (by user id or their own number), if any."""
    if not who:
        return None
    return await db.scalar(
        select(User)
        .where(User.account_id == account_id)
        .where((User.user_id == who) | (User.phnum == who))
        .limit(1)
    )


def _direction(call: CallRecord | None) -> str:
    if call is None:
        return ""
    return "outbound" if (call.detail or {}).get("kind") == "callback" else "inbound"


def _kind(address: str) -> str:
    bare = address.removeprefix("+")
    return "phnum" if bare.isdigit() else "sip"


def _name(user: User | None) -> str:
    return f"{user.fname} {user.lname}".strip() if user is not None else ""


async def recording_view(
    ctx: ServerContext, db: AsyncSession, row: CallRecordingRow, wanted: set[str]
) -> dict[str, Any]:
    """The public shape of a recording, with what `?fields=` adds."""
    view: dict[str, Any] = {
        "call_recording_id": row.recording_id,
        "call_id": row.call_id,
        "type": "voice_call",
        "account_id": row.account_id,
        "user_id": row.user_id or "",
        "created_date": format_date(row.created_at),
        # OpenIVR's own: how the recording went (recording, complete, failed, interrupted).
        "status": row.status,
        "failure": row.failure,
        "audio_length": row.seconds,
        "channels": row.channels,
        "file": {"type": "wav", "size": row.size_bytes, "file_id": row.recording_id},
    }
    if "file_access_details" in wanted:
        now = time.time()
        signed = ctx.urls.sign(_download_path(row), now)
        view["file"]["file_access_details"] = {
            "url": ctx.settings.base_url + signed,
            "issued_at": format_date(datetime.fromtimestamp(now, UTC)),
            "expires_at": format_date(datetime.fromtimestamp(now + ctx.urls.lifetime_seconds, UTC)),
        }
    if "voice_call_details" in wanted:
        view["voice_call_details"] = await _call_details(db, row)
    return view


async def _one(db: AsyncSession, who: Principal, recording_id: str) -> CallRecordingRow:
    require_admin(who)
    row = await db.get(CallRecordingRow, recording_id)
    if row is None or row.account_id != who.account_id:
        raise not_found("call recording", recording_id)
    return row


@router.get("/call-recording", responses=answers(list[CallRecordingOut]))
async def list_recordings(
    request: Request,
    who: Auth,
    ctx: Ctx,
    db: Db,
    account_id: Annotated[
        str | None, Query(max_length=20, description="The account (the token's own)")
    ] = None,
    user_id: Annotated[
        str | None, Query(max_length=20, description="Only this user's recordings")
    ] = None,
    created_date_min: Annotated[
        str | None, Query(description="Created at or after, YYYYMMDDTHH:MM:SSZ")
    ] = None,
    created_date_max: Annotated[
        str | None, Query(description="Created at or before, YYYYMMDDTHH:MM:SSZ")
    ] = None,
    kind: Annotated[str | None, Query(alias="type", description="voice_call")] = None,
    fields: Annotated[
        str | None, Query(description="file_access_details and/or voice_call_details add them")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> JSONResponse:
    """The account's call recordings, newest first (admins only)."""
    require_admin(who)
    if account_id and account_id != who.account_id:
        raise ApiError("forbidden", "this token belongs to another account")
    if kind and kind not in TYPES:
        raise FieldError("type", f"must be {' or '.join(TYPES)}")
    since = _date("created_date_min", created_date_min)
    until = _date("created_date_max", created_date_max)
    if since and until and since > until:
        raise FieldError("created_date_min", "must not be after created_date_max")
    which = store.RecordingFilter(user_id=(user_id or "").strip(), since=since, until=until)
    rows = await store.list_rows(db, who.account_id, which, limit, offset)
    wanted = _wanted(request)
    payload = [await recording_view(ctx, db, row, wanted) for row in rows]
    return success(request, payload, resource=RESOURCE)


@router.get("/call-recording/{call_recording_id}", responses=answers(CallRecordingOut))
async def get_recording(
    request: Request,
    call_recording_id: str,
    who: Auth,
    ctx: Ctx,
    db: Db,
    fields: Annotated[
        str | None, Query(description="file_access_details and/or voice_call_details add them")
    ] = None,
) -> JSONResponse:
    """One call recording (admins only)."""
    row = await _one(db, who, call_recording_id)
    view = await recording_view(ctx, db, row, _wanted(request))
    return success(request, view, resource=RESOURCE)


@router.delete("/call-recording/{call_recording_id}", responses=answers(CallRecordingOut))
async def delete_recording(
    request: Request, call_recording_id: str, who: Auth, ctx: Ctx, db: Db
) -> JSONResponse:
    """Delete a call recording, its row then its file (admins only)."""
    row = await _one(db, who, call_recording_id)
    view = await recording_view(ctx, db, row, set())
    if not await store.remove(db, ctx.settings.recordings_dir, row):
        raise not_found("call recording", call_recording_id)
    return success(request, view, resource=RESOURCE)


@router.get(
    "/audio/recording/{account_id}/{recording_file}",
    responses={200: {"content": {"audio/wav": {}}}, 403: {}, 404: {}},
    tags=["audio"],
)
async def recording_audio(
    account_id: str,
    recording_file: str,
    ctx: Ctx,
    db: Db,
    expires: str | None = None,
    sig: str | None = None,
) -> Response:
    """A recording's WAV through its signed, expiring URL (no token; range requests work)."""
    path = f"/audio/recording/{account_id}/{recording_file}"
    if not ctx.urls.verify(path, expires, sig):
        raise ApiError("bad_signature", "the link's signature is wrong or has expired")
    recording_id = recording_file.removesuffix(".wav")
    row = await db.get(CallRecordingRow, recording_id)
    if row is None or row.account_id != account_id:
        raise ApiError("not_found", "this recording was deleted")
    file = ctx.settings.recordings_dir / row.file_key
    if not file.exists():
        raise ApiError("not_found", "this recording has no file (its recording failed)")
    return FileResponse(file, media_type="audio/wav", filename=f"{recording_id}.wav")
