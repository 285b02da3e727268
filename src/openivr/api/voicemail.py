"""Voicemail messages of mailbox apps: list, read, play, mark as read, delete."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, StrictBool
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.api.deps import AccountAuth, Ctx, Db, principal
from openivr.api.docs import Loose, answers
from openivr.api.envelope import success
from openivr.api.errors import ApiError, not_found
from openivr.apps.validation import MAX_INT, known_fields
from openivr.context import ServerContext
from openivr.delivery.deposit import files_of
from openivr.delivery.metadata import audio_path, message_view
from openivr.store import voicemail as vm
from openivr.store.models import VoiceApp

router = APIRouter(tags=["voicemail"])
BASE = "/account/{account_id}/voiceapp/{app_id}/voicemail"
DEFAULT_PAGE = 50


class VoicemailIn(BaseModel):
    """What a client may change on a message; what a GET shows may come back (ignored)."""

    model_config = ConfigDict(extra="allow")
    read: StrictBool | None = None


class DeliveryOut(Loose):
    """One delivery of a message (e-mail or webhook) and how it went."""

    channel: str | None = None
    state: str | None = None
    attempts: int | None = None
    last_error: str | None = None
    next_attempt_at: str | None = None
    delivered_at: str | None = None


class VoicemailOut(Loose):
    """A voicemail message as the API shows it."""

    message_id: str | None = None
    app_id: str | None = None
    caller: str | None = None
    dialed: str | None = None
    call_id: str | None = None
    duration: float | None = None
    created: str | None = None
    read: bool | None = None
    delivery_state: str | None = None
    audio_url: str | None = None
    delivery: list[DeliveryOut] | None = None


async def _mailbox(db: AsyncSession, account_id: str, app_id: str) -> VoiceApp:
    app = await db.get(VoiceApp, app_id)
    if app is None or app.account_id != account_id or app.app_type != "mailbox":
        raise not_found("mailbox", app_id)
    return app


async def _message(db: AsyncSession, account_id: str, app_id: str, message_id: str) -> vm.Voicemail:
    await _mailbox(db, account_id, app_id)
    msg = await db.get(vm.Voicemail, message_id)
    if msg is None or msg.account_id != account_id or msg.app_id != app_id:
        raise not_found("voicemail", message_id)
    return msg


def _time(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        raise ApiError(
            "invalid_field", f"{name}: {value!r} is not an ISO 8601 time (2024-05-01T12:00:00Z)"
        ) from None
    # Compared in UTC: SQLite compares stored times as text.
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _detail(ctx: ServerContext, db: AsyncSession, msg: vm.Voicemail) -> dict[str, Any]:
    deliveries = (await vm.deliveries_of(db, [msg.message_id]))[msg.message_id]
    attempts = await vm.attempts_of(db, [d.delivery_id for d in deliveries])
    return message_view(ctx, msg, deliveries, attempts)


@router.get(BASE, responses=answers(list[VoicemailOut]))
async def list_voicemail(
    request: Request,
    account_id: str,
    app_id: str,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
    unread: Annotated[bool, Query(description="Only unread messages")] = False,
    since: Annotated[
        str | None, Query(alias="from", description="Created at or after (ISO 8601)")
    ] = None,
    until: Annotated[str | None, Query(alias="to", description="Created at or before")] = None,
    caller: Annotated[str | None, Query(description="Only messages from this number")] = None,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="Page size (default 50)")
    ] = DEFAULT_PAGE,
    offset: Annotated[int | None, Query(ge=0, le=MAX_INT, description="Messages to skip")] = None,
    page: Annotated[
        int | None, Query(ge=1, le=MAX_INT // 1000, description="1-based page of `limit`")
    ] = None,
) -> JSONResponse:
    """A mailbox's messages, newest first; X-Total-Count has the number matching in all."""
    await _mailbox(db, account_id, app_id)
    start, end = _time("from", since), _time("to", until)
    if start and end and start > end:
        raise ApiError("invalid_field", "from: must not be after 'to'")
    if offset is not None and page is not None:
        raise ApiError("invalid_field", "page: give either 'page' or 'offset', not both")
    skip = offset if offset is not None else ((page or 1) - 1) * limit
    which = vm.MessageFilter(
        unread_only=unread, since=start, until=end, caller=(caller or "").strip()
    )
    rows, total = await vm.list_messages(db, app_id, which, limit, skip)
    deliveries = await vm.deliveries_of(db, [m.message_id for m in rows])
    payload = [message_view(ctx, m, deliveries[m.message_id]) for m in rows]
    return success(request, payload, headers={"X-Total-Count": str(total)}, resource="voicemail")


@router.get(BASE + "/{message_id}", responses=answers(VoicemailOut))
async def get_voicemail(
    request: Request,
    account_id: str,
    app_id: str,
    message_id: str,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
) -> JSONResponse:
    """One message: metadata, a signed audio_url and each delivery with its attempts."""
    msg = await _message(db, account_id, app_id, message_id)
    return success(request, await _detail(ctx, db, msg), resource="voicemail")


@router.put(BASE + "/{message_id}", responses=answers(VoicemailOut))
async def put_voicemail(
    request: Request,
    account_id: str,
    app_id: str,
    message_id: str,
    body: VoicemailIn,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
) -> JSONResponse:
    """Mark a message read or unread: {"read": true}."""
    shown = (*VoicemailOut.model_fields, "account_id", "size", "deliveries")
    known_fields(body.model_dump(exclude_unset=True), ("read",), shown)
    msg = await _message(db, account_id, app_id, message_id)
    if body.read is None:
        raise ApiError("missing_field", 'read: is required ({"read": true} or false)')
    msg.is_read = body.read
    await db.commit()
    return success(request, await _detail(ctx, db, msg), resource="voicemail")


@router.delete(BASE + "/{message_id}", responses=answers(VoicemailOut))
async def delete_voicemail(
    request: Request,
    account_id: str,
    app_id: str,
    message_id: str,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
) -> JSONResponse:
    """Delete a message: its row (and pending deliveries), then its audio."""
    msg = await _message(db, account_id, app_id, message_id)
    view = await _detail(ctx, db, msg)
    files = files_of(ctx)
    # The sidecar becomes a tombstone first, so a crash after the commit cannot revive it.
    await asyncio.to_thread(files.mark_deleted, msg.audio_key)
    try:
        await vm.remove_message(db, message_id)
        await db.commit()
    except BaseException:
        await asyncio.to_thread(files.unmark_deleted, msg.audio_key)
        raise
    await asyncio.to_thread(files.remove, msg.audio_key)
    return success(request, view, resource="voicemail")


@router.get(
    BASE + "/{message_id}/audio",
    responses={200: {"content": {"audio/wav": {}}}, 401: {}, 403: {}, 404: {}},
)
async def voicemail_audio(
    request: Request,
    account_id: str,
    app_id: str,
    message_id: str,
    ctx: Ctx,
    db: Db,
    expires: str | None = None,
    sig: str | None = None,
) -> Response:
    """The message's WAV: with a bearer token, or through its signed audio_url (ranges work)."""
    path = audio_path(account_id, app_id, message_id)
    if expires is not None or sig is not None:
        if not ctx.urls.verify(path, expires, sig):
            raise ApiError("bad_signature", "the link's signature is wrong or has expired")
    else:
        who = await principal(request, ctx)
        if who.account_id != account_id:
            raise ApiError("forbidden", "this token belongs to another account")
    msg = await _message(db, account_id, app_id, message_id)
    file = files_of(ctx).wav_path(msg.audio_key)
    if not file.exists():
        raise ApiError("not_found", "this message's audio was deleted")
    return FileResponse(file, media_type="audio/wav", filename=f"voicemail-{message_id}.wav")
