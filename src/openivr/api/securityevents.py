"""Security events of an account's users: wrong passwords, refusals during a ban, bans."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from openivr.api.deps import AccountAuth, Db, require_admin
from openivr.api.docs import Loose, answers
from openivr.api.envelope import format_date, success
from openivr.apps.validation import MAX_INT
from openivr.store.models import SecurityEvent

router = APIRouter(tags=["security_event"])


class SecurityEventOut(Loose):
    """One security event."""

    event_id: str | None = None
    kind: str | None = None
    reason: str | None = None


def event_view(e: SecurityEvent) -> dict[str, Any]:
    """The public shape of a security event."""
    return {
        "event_id": str(e.event_id),
        "time": format_date(e.at),
        "kind": e.kind,
        "reason": e.reason,
        "channel": e.channel,
        "source": e.source,
        "username": e.username,
        "user_id": e.user_id,
        "node": e.node,
        "count": int(e.detail.get("count", 1)) if e.kind == "refusal" else 1,
        "detail": e.detail,
    }


@router.get("/account/{account_id}/security-event", responses=answers(list[SecurityEventOut]))
async def list_security_events(
    request: Request,
    account_id: str,
    who: AccountAuth,
    db: Db,
    kind: Annotated[
        Literal["failure", "refusal", "ban"] | None, Query(description="failure, refusal or ban")
    ] = None,
    reason: Annotated[
        Literal["wrong_password", "address_banned", "user_locked"] | None,
        Query(description="wrong_password, address_banned or user_locked"),
    ] = None,
    channel: Annotated[Literal["sip", "api"] | None, Query(description="sip or api")] = None,
    source: Annotated[str | None, Query(max_length=64, description="Address")] = None,
    user_id: Annotated[
        str | None, Query(max_length=20, description="A user of the account")
    ] = None,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> JSONResponse:
    """Wrong passwords, refused attempts and bans concerning the account's users, newest
    first (admins only)."""
    require_admin(who)
    query = select(SecurityEvent).where(SecurityEvent.account_id == account_id)
    if kind:
        query = query.where(SecurityEvent.kind == kind)
    if reason:
        query = query.where(SecurityEvent.reason == reason)
    if channel:
        query = query.where(SecurityEvent.channel == channel)
    if source:
        query = query.where(SecurityEvent.source == source)
    if user_id:
        query = query.where(SecurityEvent.user_id == user_id)
    if since:
        query = query.where(SecurityEvent.at >= since)
    if until:
        query = query.where(SecurityEvent.at < until)
    query = query.order_by(SecurityEvent.at.desc(), SecurityEvent.event_id.desc())
    rows = (await db.scalars(query.limit(limit).offset(offset))).all()
    return success(request, [event_view(e) for e in rows], resource="security_event")
