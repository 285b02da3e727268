"""Schedules of an account: list, read, create, change (compare-and-swap), delete.

Each change is validate -> store -> bump the account's revision, in one transaction, so the
next call on every node follows the hours as saved.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.apps import validation as v
from openivr.apps.schedules import schema
from openivr.apps.validation import Refusal
from openivr.store import ids
from openivr.store.models import Account, Schedule
from openivr.store.references import release
from openivr.store.versioned import ATTEMPTS, etag, if_match_holds, swap


def schedule_etag(schedule: Schedule) -> str:
    """The ETag of a schedule's current version."""
    return etag(schedule.version)


class ScheduleService:
    """The schedules of one account, through one database session."""

    def __init__(
        self, db: AsyncSession, account_id: str, view: Callable[[Schedule], dict[str, Any]]
    ):
        self.db = db
        self.account_id = account_id
        # How the API shows a schedule: a PUT may send back its read-only fields unchanged.
        self.view = view

    async def all(self) -> Sequence[Schedule]:
        """Every schedule, oldest first."""
        return (
            await self.db.scalars(
                select(Schedule)
                .where(Schedule.account_id == self.account_id)
                .order_by(Schedule.created_at, Schedule.schedule_id)
            )
        ).all()

    async def one(self, schedule_id: str, *, for_update: bool = False) -> Schedule:
        """A schedule of the account; Refusal not_found otherwise."""
        query = select(Schedule).where(Schedule.schedule_id == schedule_id)
        if for_update:
            query = query.with_for_update().execution_options(populate_existing=True)
        schedule = await self.db.scalar(query)
        if schedule is None or schedule.account_id != self.account_id:
            raise Refusal("not_found", f"no schedule {schedule_id!r} in this account")
        return schedule

    async def create(self, body: dict[str, Any]) -> Schedule:
        """A new schedule from a POST body (name required; timezone defaults to the account's)."""
        data = v.known_fields(body, schema.WRITABLE, schema.READ_ONLY)
        if "name" not in data:
            raise Refusal("missing_field", "name: is required")
        account = await self.db.get(Account, self.account_id)
        name, cfg = schema.build_schedule(data, account.timezone if account else "UTC")
        schedule = Schedule(
            schedule_id=ids.schedule_id(),
            account_id=self.account_id,
            name=name or "",
            config=cfg,
            version=1,
        )
        self.db.add(schedule)
        await self.db.commit()
        return schedule

    async def change(
        self, schedule_id: str, body: dict[str, Any], if_match: str | None
    ) -> Schedule:
        """Apply the fields a PUT carries; others keep their values. 412 when If-Match is stale."""
        for attempt in range(ATTEMPTS):
            schedule = await self.one(schedule_id, for_update=True)
            if if_match is not None and not if_match_holds(if_match, schedule.version):
                raise Refusal(
                    "precondition_failed",
                    f"If-Match {if_match} is stale; current ETag is {schedule_etag(schedule)}",
                )
            data = v.known_fields(body, schema.WRITABLE, schema.READ_ONLY, self.view(schedule))
            name, cfg = schema.build_schedule(data, "UTC", current=schedule.config)
            values = {"config": cfg, "name": name if name is not None else schedule.name}
            key = Schedule.schedule_id == schedule_id
            if await swap(self.db, Schedule, key, schedule.account_id, schedule.version, values):
                await self.db.commit()
                self.db.expunge_all()
                return await self.one(schedule_id)
            await self.db.rollback()
            if if_match is not None:
                raise Refusal(
                    "precondition_failed", "the schedule changed while this request was applied"
                )
            self.db.expunge_all()
            await asyncio.sleep(random.uniform(0.001, 0.005) * (attempt + 1))
        raise Refusal("precondition_failed", "the schedule is changing too often; retry")

    async def remove(self, schedule_id: str, *, force: bool) -> Schedule:
        """Delete a schedule; in_use while menus follow it, unless force (they become always open)."""
        schedule = await self.one(schedule_id)
        await release(
            self.db,
            self.account_id,
            [("schedule", schedule_id)],
            force=force,
            in_use="the schedule is still used by",
        )
        await self.db.delete(schedule)
        await self.db.commit()
        return schedule
