"""Teams of an account: list, read, create, change (compare-and-swap), delete.

Each change is validate -> store -> bump the account's revision, in one transaction, so the
next call on every node rings the team as saved.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.apps import validation as v
from openivr.apps.teams import schema
from openivr.apps.validation import Refusal
from openivr.store import ids
from openivr.store.models import Team
from openivr.store.references import account_teams, release
from openivr.store.versioned import ATTEMPTS, etag, if_match_holds, swap
from openivr.store.voiceapps import account_refs


def team_etag(team: Team) -> str:
    """The ETag of a team's current version."""
    return etag(team.version)


class TeamService:
    """The teams of one account, through one database session."""

    def __init__(self, db: AsyncSession, account_id: str, view: Callable[[Team], dict[str, Any]]):
        self.db = db
        self.account_id = account_id
        # How the API shows a team: a PUT may send back its read-only fields unchanged.
        self.view = view

    async def all(self) -> Sequence[Team]:
        """Every team, oldest first."""
        return await account_teams(self.db, self.account_id)

    async def one(self, team_id: str, *, for_update: bool = False) -> Team:
        """A team of the account; Refusal not_found otherwise."""
        query = select(Team).where(Team.team_id == team_id)
        if for_update:
            query = query.with_for_update().execution_options(populate_existing=True)
        team = await self.db.scalar(query)
        if team is None or team.account_id != self.account_id:
            raise Refusal("not_found", f"no team {team_id!r} in this account")
        return team

    async def create(self, body: dict[str, Any]) -> Team:
        """A new team from a POST body (name required)."""
        data = v.known_fields(body, schema.WRITABLE, schema.READ_ONLY)
        if "name" not in data:
            raise Refusal("missing_field", "name: is required")
        refs = await account_refs(self.db, self.account_id)
        name, cfg = schema.build_team(data, refs)
        team = Team(
            team_id=ids.team_id(),
            account_id=self.account_id,
            name=name or "",
            config=cfg,
            version=1,
            last_answered="",
        )
        self.db.add(team)
        await self.db.commit()
        return team

    async def change(self, team_id: str, body: dict[str, Any], if_match: str | None) -> Team:
        """Apply the fields a PUT carries; others keep their values. 412 when If-Match is stale."""
        for attempt in range(ATTEMPTS):
            team = await self.one(team_id, for_update=True)
            if if_match is not None and not if_match_holds(if_match, team.version):
                raise Refusal(
                    "precondition_failed",
                    f"If-Match {if_match} is stale; current ETag is {team_etag(team)}",
                )
            data = v.known_fields(body, schema.WRITABLE, schema.READ_ONLY, self.view(team))
            refs = await account_refs(self.db, self.account_id)
            name, cfg = schema.build_team(data, refs, current=team.config)
            values = {"config": cfg, "name": name if name is not None else team.name}
            if await swap(
                self.db, Team, Team.team_id == team_id, team.account_id, team.version, values
            ):
                await self.db.commit()
                self.db.expunge_all()
                return await self.one(team_id)
            await self.db.rollback()
            if if_match is not None:
                raise Refusal(
                    "precondition_failed", "the team changed while this request was applied"
                )
            self.db.expunge_all()
            await asyncio.sleep(random.uniform(0.001, 0.005) * (attempt + 1))
        raise Refusal("precondition_failed", "the team is changing too often; retry")

    async def remove(self, team_id: str, *, force: bool) -> Team:
        """Delete a team; in_use while menus, numbers or other teams point at it, unless force."""
        team = await self.one(team_id)
        await release(
            self.db,
            self.account_id,
            [("team", team_id)],
            force=force,
            in_use="the team is still used by",
        )
        await self.db.delete(team)
        await self.db.commit()
        return team
