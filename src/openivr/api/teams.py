"""Teams: list, create, read, change (ETag/If-Match), delete. The logic is in apps/teams/."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from openivr.api.deps import AccountAuth, Db
from openivr.api.docs import Loose, answers
from openivr.api.envelope import format_date, success
from openivr.apps.teams import schema
from openivr.apps.teams.service import TeamService, team_etag
from openivr.store.models import Team

router = APIRouter(tags=["team"])


def view(team: Team) -> dict[str, Any]:
    """The public shape of a stored team."""
    return schema.team_view(
        team.team_id, team.account_id, team.name, team.config, format_date(team.created_at)
    )


class ActionDoc(BaseModel):
    """What happens next: `{"action", "to", "id"}` as in menus."""

    model_config = ConfigDict(extra="allow")
    action: StrictStr | None = None
    to: StrictStr | None = None
    id: StrictStr | StrictInt | None = None


class TeamIn(BaseModel):
    """A team's settings; a PUT changes only the fields it carries. Fields a GET returns
    (`team_id`, `account_id`, `create_date`) may be sent back unchanged; others are refused."""

    model_config = ConfigDict(extra="allow")
    name: StrictStr | None = Field(None, description="Shown, and spoken in default menus")
    members: list[StrictStr | StrictInt] | None = Field(
        None, description="User ids in ringing order"
    )
    strategy: StrictStr | None = Field(None, description="all (default), order or rotate")
    ring_seconds: StrictInt | None = Field(None, description="Per member, 5-300 (default 20)")
    max_seconds: StrictInt | None = Field(None, description="Whole team, 5-3600 (default 60)")
    no_answer: ActionDoc | None = Field(
        None, description="When nobody answers; empty: 'unavailable', back to the menu"
    )


class TeamOut(Loose):
    """A team as the API shows it."""

    team_id: str | None = None
    name: str | None = None
    members: list[str] | None = None
    strategy: str | None = None


def _body(body: TeamIn) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True)


@router.get("/account/{account_id}/team", responses=answers(list[TeamOut]))
async def list_teams(request: Request, account_id: str, who: AccountAuth, db: Db) -> JSONResponse:
    """All teams of the account."""
    teams = await TeamService(db, account_id, view).all()
    return success(request, [view(t) for t in teams])


@router.post("/account/{account_id}/team", responses=answers(TeamOut, 409))
async def create_team(
    request: Request, account_id: str, body: TeamIn, who: AccountAuth, db: Db
) -> JSONResponse:
    """Create a team (HTTP 200, as every success of the hosted API)."""
    team = await TeamService(db, account_id, view).create(_body(body))
    return success(request, view(team), headers={"ETag": team_etag(team)})


@router.get("/account/{account_id}/team/{team_id}", responses=answers(TeamOut))
async def get_team(
    request: Request, account_id: str, team_id: str, who: AccountAuth, db: Db
) -> JSONResponse:
    """One team, with its ETag."""
    team = await TeamService(db, account_id, view).one(team_id)
    return success(request, view(team), headers={"ETag": team_etag(team)})


@router.put("/account/{account_id}/team/{team_id}", responses=answers(TeamOut, 412))
async def put_team(
    request: Request,
    account_id: str,
    team_id: str,
    body: TeamIn,
    who: AccountAuth,
    db: Db,
    if_match: Annotated[str | None, Header(description="ETag from a GET: 412 if stale")] = None,
) -> JSONResponse:
    """Change the fields the body carries; others keep their values."""
    team = await TeamService(db, account_id, view).change(team_id, _body(body), if_match)
    return success(request, view(team), headers={"ETag": team_etag(team)})


@router.delete("/account/{account_id}/team/{team_id}", responses=answers(TeamOut, 409))
async def delete_team(
    request: Request,
    account_id: str,
    team_id: str,
    who: AccountAuth,
    db: Db,
    force: Annotated[
        bool, Query(description="Clear menus, numbers and teams pointing at the team")
    ] = False,
) -> JSONResponse:
    """Delete a team; 409 while menus, numbers or other teams point at it, unless force=true."""
    removed = await TeamService(db, account_id, view).remove(team_id, force=force)
    return success(request, view(removed))
