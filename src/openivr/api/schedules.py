"""Schedules (opening hours): list, create, read, change (ETag/If-Match), delete. The logic
is in apps/schedules/."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from openivr.api.deps import AccountAuth, Db
from openivr.api.docs import Loose, answers
from openivr.api.envelope import format_date, success
from openivr.apps.schedules import schema
from openivr.apps.schedules.service import ScheduleService, schedule_etag
from openivr.store.models import Schedule

router = APIRouter(tags=["schedule"])


def view(schedule: Schedule) -> dict[str, Any]:
    """The public shape of a stored schedule."""
    return schema.schedule_view(
        schedule.schedule_id,
        schedule.account_id,
        schedule.name,
        schedule.config,
        format_date(schedule.created_at),
    )


class WeeklyDoc(BaseModel):
    """Open on these weekdays from `from` to `to` (local time; `22:00`-`06:00` runs past
    midnight, `24:00` ends at midnight)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    days: list[StrictStr] | None = Field(None, description="mon, tue, wed, thu, fri, sat, sun")
    from_: StrictStr | None = Field(None, alias="from", description="HH:MM")
    to: StrictStr | None = Field(None, description="HH:MM")


class SpecialDoc(BaseModel):
    """Other hours on one date (instead of the weekly hours)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    date: StrictStr | None = Field(None, description="YYYY-MM-DD")
    from_: StrictStr | None = Field(None, alias="from", description="HH:MM")
    to: StrictStr | None = Field(None, description="HH:MM")


class ScheduleIn(BaseModel):
    """A schedule's settings; a PUT changes only the fields it carries. Fields a GET returns
    (`schedule_id`, `account_id`, `create_date`) may be sent back unchanged; others are refused."""

    model_config = ConfigDict(extra="allow")
    name: StrictStr | None = None
    timezone: StrictStr | None = Field(None, description="IANA zone; a new schedule: the account's")
    weekly: list[WeeklyDoc] | None = None
    closed_dates: list[StrictStr] | None = Field(None, description="Holidays, YYYY-MM-DD")
    special: list[SpecialDoc] | None = None


class ScheduleOut(Loose):
    """A schedule as the API shows it."""

    schedule_id: str | None = None
    name: str | None = None
    timezone: str | None = None


def _body(body: ScheduleIn) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True, by_alias=True)


@router.get("/account/{account_id}/schedule", responses=answers(list[ScheduleOut]))
async def list_schedules(
    request: Request, account_id: str, who: AccountAuth, db: Db
) -> JSONResponse:
    """All schedules of the account."""
    schedules = await ScheduleService(db, account_id, view).all()
    return success(request, [view(s) for s in schedules])


@router.post("/account/{account_id}/schedule", responses=answers(ScheduleOut, 409))
async def create_schedule(
    request: Request, account_id: str, body: ScheduleIn, who: AccountAuth, db: Db
) -> JSONResponse:
    """Create a schedule (HTTP 200, as every success of the hosted API)."""
    schedule = await ScheduleService(db, account_id, view).create(_body(body))
    return success(request, view(schedule), headers={"ETag": schedule_etag(schedule)})


@router.get("/account/{account_id}/schedule/{schedule_id}", responses=answers(ScheduleOut))
async def get_schedule(
    request: Request, account_id: str, schedule_id: str, who: AccountAuth, db: Db
) -> JSONResponse:
    """One schedule, with its ETag."""
    schedule = await ScheduleService(db, account_id, view).one(schedule_id)
    return success(request, view(schedule), headers={"ETag": schedule_etag(schedule)})


@router.put("/account/{account_id}/schedule/{schedule_id}", responses=answers(ScheduleOut, 412))
async def put_schedule(
    request: Request,
    account_id: str,
    schedule_id: str,
    body: ScheduleIn,
    who: AccountAuth,
    db: Db,
    if_match: Annotated[str | None, Header(description="ETag from a GET: 412 if stale")] = None,
) -> JSONResponse:
    """Change the fields the body carries; others keep their values."""
    schedule = await ScheduleService(db, account_id, view).change(
        schedule_id, _body(body), if_match
    )
    return success(request, view(schedule), headers={"ETag": schedule_etag(schedule)})


@router.delete("/account/{account_id}/schedule/{schedule_id}", responses=answers(ScheduleOut, 409))
async def delete_schedule(
    request: Request,
    account_id: str,
    schedule_id: str,
    who: AccountAuth,
    db: Db,
    force: Annotated[
        bool, Query(description="Menus following the schedule become always open")
    ] = False,
) -> JSONResponse:
    """Delete a schedule; 409 while menus follow it, unless force=true."""
    removed = await ScheduleService(db, account_id, view).remove(schedule_id, force=force)
    return success(request, view(removed))
