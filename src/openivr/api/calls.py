"""Call records: every call the node carried, newest first."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import String, cast, select

from openivr.api.deps import AccountAuth, Db
from openivr.api.docs import Loose, answers
from openivr.api.envelope import format_date, partial, success_rendered
from openivr.apps.validation import MAX_INT
from openivr.store.models import CallRecord

router = APIRouter(tags=["call"])
# Records read, rendered and encoded per step of a call list. The event loop that serves the API
# also paces every call's RTP (one process, `--workers 0`): 1,000 records as ORM objects and one
# JSON document held it ~40 ms of CPU in one stretch, a gap every call hears. Plain rows in steps
# of this size, with the loop free between steps, hold it ~2 ms at a time (bench/api/loop_stretch.py).
LIST_STEP = 100
_ROWS = tuple(CallRecord.__table__.c)


class CallOut(Loose):
    """One call record."""

    call_id: str | None = None
    outcome: str | None = None


def _iso(value: datetime | None) -> str | None:
    return format_date(value) if value is not None else None


def call_view(c: Any) -> dict[str, Any]:
    """The public shape of a call record (a `CallRecord` or a row of its table)."""
    return {
        "call_id": c.call_id,
        "from": c.from_number,
        "to": c.to_number,
        "account_id": c.account_id,
        "apps": c.apps,
        "keys": c.keys,
        "outcome": c.outcome,
        "detail": c.detail,
        "transfers": c.transfers,
        "sip_status": c.sip_status,
        "ended_by": c.ended_by,
        "node": c.node,
        "start_time": _iso(c.started_at),
        "answer_time": _iso(c.answered_at),
        "end_time": _iso(c.ended_at),
        "duration": round((c.ended_at - c.started_at).total_seconds(), 2) if c.ended_at else None,
    }


@router.get("/account/{account_id}/call", responses=answers(list[CallOut]))
async def list_calls(
    request: Request,
    account_id: str,
    who: AccountAuth,
    db: Db,
    from_: Annotated[str | None, Query(alias="from", description="Caller")] = None,
    to: Annotated[str | None, Query(description="Number or app dialled")] = None,
    app_id: Annotated[str | None, Query(description="An app the call visited")] = None,
    since: Annotated[datetime | None, Query(description="Started at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Started before (ISO 8601)")] = None,
    outcome: Annotated[
        str | None,
        Query(
            max_length=40,
            description="How calls ended: voicemail, transferred, hangup, caller_hangup,"
            " prompt_recorded (a prompt recorded by phone), connected (a callback whose two"
            " calls talked), call1_<why> / call2_<why> (a callback that did not connect:"
            " call2_busy, call1_no_answer, ...), ...;"
            " in_progress for calls still up",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> Response:
    """The account's calls, newest first, filtered by caller, number, app, time and outcome.

    Calls still up are listed too, on whichever node carries them: outcome `in_progress`,
    `end_time` and `duration` empty; they get their outcome when they end."""
    query = select(*_ROWS).where(CallRecord.account_id == account_id)
    if from_:
        query = query.where(CallRecord.from_number == from_)
    if to:
        query = query.where(CallRecord.to_number == to)
    if app_id:
        query = query.where(cast(CallRecord.apps, String).like(f'%"{app_id}"%'))
    if outcome:
        query = query.where(CallRecord.outcome == outcome)
    if since:
        query = query.where(CallRecord.started_at >= since)
    if until:
        query = query.where(CallRecord.started_at < until)
    query = query.order_by(CallRecord.started_at.desc(), CallRecord.record_id.desc())
    fields = request.query_params.get("fields")
    parts: list[str] = []
    result = await db.stream(query.limit(limit).offset(offset))
    async for rows in result.partitions(LIST_STEP):
        views = partial([call_view(row) for row in rows], fields, "call")
        parts.append(
            json.dumps(views, ensure_ascii=False, allow_nan=False, separators=(",", ":"))[1:-1]
        )
        await asyncio.sleep(0)  # let the media clock's tick in between
    payload = "[" + ",".join(p for p in parts if p) + "]"
    return success_rendered(request, payload.encode("utf-8"))
