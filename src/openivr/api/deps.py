"""Request dependencies: the database session and the authenticated principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.api.errors import ApiError
from openivr.context import ServerContext
from openivr.security import TokenError


async def context(request: Request) -> ServerContext:
    """The node's shared state (async: FastAPI would run a plain function in a thread)."""
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
    config_revision: int  # of the account, read with the token check


async def principal(request: Request, ctx: Ctx) -> Principal:
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
    standing = await ctx.standing.read(claims.user_id)
    if (
        standing is None
        or standing.account_id != claims.account_id
        or standing.token_generation != claims.generation
    ):
        raise ApiError("unauthorized", "the token has been revoked")
    return Principal(
        claims.account_id,
        claims.user_id,
        standing.user_type == "admin",
        standing.config_revision,
    )


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
