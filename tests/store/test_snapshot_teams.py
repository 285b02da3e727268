"""A call's snapshot of its account sees teams and schedules as saved, and who answered a
rotating team last, on every node: the next call after a change uses it."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import update

from openivr.apps.schedules.service import ScheduleService
from openivr.apps.teams.service import TeamService
from openivr.store.accounts import create_account
from openivr.store.db import open_database
from openivr.store.models import Schedule, Team
from openivr.store.snapshot import SnapshotCache


def _team_view(team: Team) -> dict[str, Any]:
    return {"team_id": team.team_id, "name": team.name, **team.config}


def _schedule_view(schedule: Schedule) -> dict[str, Any]:
    return {"schedule_id": schedule.schedule_id, "name": schedule.name, **schedule.config}


def test_snapshots_follow_teams_schedules_and_the_rotation(database_url: str) -> None:
    async def scenario() -> None:
        async with open_database(database_url) as (_engine, sessions):
            made = await create_account(sessions, "owner@example.com", "password1")
            account = made.account_id
            node_a, node_b = SnapshotCache(), SnapshotCache()
            async with sessions() as db:
                team = await TeamService(db, account, _team_view).create(
                    {"name": "Sales", "members": [made.user_id], "strategy": "rotate"}
                )
                schedule = await ScheduleService(db, account, _schedule_view).create(
                    {"name": "Office", "timezone": "Europe/Stockholm"}
                )
            for node in (node_a, node_b):
                async with sessions() as db:
                    seen = (await node.get(db, account)).config
                found = seen.team(account, team.team_id)
                assert found is not None and found.strategy == "rotate"
                hours = seen.schedule(account, schedule.schedule_id)
                assert hours is not None and hours.timezone == "Europe/Stockholm"
                assert seen.last_answered(team.team_id) is None
            # Node A changes the team; node B's next call sees it.
            async with sessions() as db:
                await TeamService(db, account, _team_view).change(
                    team.team_id, {"strategy": "order", "ring_seconds": 9}, None
                )
            async with sessions() as db:
                changed = (await node_b.get(db, account)).config.team(account, team.team_id)
            assert changed is not None and (changed.strategy, changed.ring_seconds) == ("order", 9)
            # Back to rotate; then a node notes who answered (no revision bump): both see it.
            async with sessions() as db:
                await TeamService(db, account, _team_view).change(
                    team.team_id, {"strategy": "rotate"}, None
                )
            for node in (node_a, node_b):
                async with sessions() as db:
                    await node.get(db, account)
            async with sessions() as db:
                await db.execute(
                    update(Team)
                    .where(Team.team_id == team.team_id)
                    .values(last_answered=made.user_id)
                )
                await db.commit()
            for node in (node_a, node_b):
                async with sessions() as db:
                    snapshot = await node.get(db, account)
                assert snapshot.config.last_answered(team.team_id) == made.user_id

    asyncio.run(scenario())
