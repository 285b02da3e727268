"""Request dependencies: the database session and the authenticated principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.api.context import ServerContext
from openivr.api.errors import ApiError
from openivr.security import TokenError
from openivr.store.models import User


def context(request: Request) -> ServerContext:
    """The node's shared state."""
    ctx: ServerContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServerContext, Depends(context)]


async def session(ctx: Ctx) -> AsyncIterator[AsyncSession]:
    """One database session per request."""
    async with ctx.sessions() as s:
        yield s


Db = Annotated[AsyncSession, Depends(session)]


@dataclass(frozen=True)
class Principal:
    """The authenticated user a request acts for."""

    account_id: str
    user_id: str
    is_admin: bool


async def principal(request: Request, ctx: Ctx, db: Db) -> Principal:
    """Authenticate the bearer token; revoked, forged or expired tokens are refused."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            "unauthorized", "an 'Authorization: Bearer <access token>' header is required"
        )
    try:
        claims = ctx.tokens.decode(token.strip(), "access")
    except TokenError as exc:
        raise ApiError("unauthorized", str(exc)) from None
    row = (
        await db.execute(
            select(User.account_id, User.token_generation, User.user_type).where(
                User.user_id == claims.user_id
            )
        )
    ).first()
    if (
        row is None
        or row.account_id != claims.account_id
        or row.token_generation != claims.generation
    ):
        raise ApiError("unauthorized", "the token has been revoked")
    return Principal(claims.account_id, claims.user_id, row.user_type == "admin")


Auth = Annotated[Principal, Depends(principal)]


async def account_principal(
    who: Auth, account_id: Annotated[str, Path(description="Account id (digits)")]
) -> Principal:
    """The principal, provided the path's account is the token's own."""
    if account_id != who.account_id:
        raise ApiError("forbidden", "this token belongs to another account")
    return who


AccountAuth = Annotated[Principal, Depends(account_principal)]


def require_admin(who: Principal) -> None:
    """Only admin users manage users."""
    if not who.is_admin:
        raise ApiError("forbidden", "only admin users can do this")
