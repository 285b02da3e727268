"""The OAuth2 token endpoint: password and refresh_token grants."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select, update

from openivr.api.deps import Ctx, Db
from openivr.apps.validation import control_character
from openivr.guard.addresses import counted_source, forwarded_client
from openivr.guard.guessing import Attempt
from openivr.security import PasswordWorkBusy, TokenError, verify_password_off_loop
from openivr.store.models import RefreshToken, User

router = APIRouter(tags=["auth"])


class TokenAnswer(BaseModel):
    """A successful token answer (not enveloped, as OAuth2 clients expect)."""

    access_token: str
    token_type: str
    refresh_token: str | None = None
    expires_in: int


class TokenError_(BaseModel):
    """An OAuth2 error answer."""

    error: str
    error_description: str


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            client, _, secret = (
                base64.b64decode(value.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return None
        return client, secret
    if "client_id" in form:
        return form["client_id"], form.get("client_secret", "")
    return None


def login_attempt(request: Request, ctx: Ctx, username: str) -> Attempt:
    """A password login as the guessing guard counts it: the client's address (named by a
    trusted proxy's X-Forwarded-For) and the e-mail as typed, lower-cased."""
    peer = request.client.host if request.client else ""
    client = forwarded_client(peer, request.headers.get("x-forwarded-for", ""), ctx.trusted)
    return Attempt.of(
        "api", counted_source(client), username.strip().lower(), client in ctx.trusted
    )


TOKEN_DOC: dict[int | str, dict[str, Any]] = {
    200: {"model": TokenAnswer},
    400: {"model": TokenError_},
    401: {"model": TokenError_},
    415: {"model": TokenError_},
    429: {"model": TokenError_},
    503: {"model": TokenError_},
}


async def token(request: Request, ctx: Ctx, db: Db) -> JSONResponse:
    """Issue tokens for `grant_type=password` or `grant_type=refresh_token`."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return _oauth_error(
            415,
            "invalid_request",
            "send the fields as application/x-www-form-urlencoded or multipart/form-data",
        )
    try:
        raw = await request.form()
    except Exception:  # a broken multipart body is the client's error, not ours
        return _oauth_error(400, "invalid_request", "the form body could not be parsed")
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    for name, value in form.items():
        reason = control_character(name, multiline=False) or control_character(
            value, multiline=False
        )
        if reason is not None:
            return _oauth_error(400, "invalid_request", f"{name}: {reason}")
    client = _client_credentials(request, form)
    allowed = ctx.settings.client_ids
    if client is None or client[0] not in allowed or client[1] != client[0]:
        return _oauth_error(
            401, "unauthorized", "unknown client: send HTTP Basic client credentials"
        )
    grant = form.get("grant_type", "")
    want_refresh = form.get("refresh", "yes").strip().lower() != "no"
    if grant == "password":
        username, password = form.get("username", ""), form.get("password", "")
        if not username or not password:
            return _oauth_error(400, "invalid_request", "username and password are required")
        attempt = login_attempt(request, ctx, username)
        verdict = await ctx.guard.check(attempt)
        if verdict.refused:
            # Too many wrong passwords from this address or for this name: refused without
            # looking at the password, the same for names that exist and names that do not.
            seconds = verdict.retry_after()
            response = _oauth_error(
                429,
                "temporarily_unavailable",
                f"too many failed logins: try again in {seconds} s",
            )
            response.headers["Retry-After"] = str(seconds)
            return response
        user = await db.scalar(select(User).where(User.email == attempt.username))
        try:
            # An unknown name is checked against a stand-in hash: it takes as long.
            matches = await verify_password_off_loop(
                user.password_hash if user is not None else None, password
            )
        except PasswordWorkBusy:
            # Every password thread is busy and the queue is full (a flood of logins): refuse
            # at once rather than queue without bound; calls' audio never waits for logins.
            response = _oauth_error(
                503, "temporarily_unavailable", "too many logins at once: retry in a second"
            )
            response.headers["Retry-After"] = "1"
            return response
        if user is None or not matches:
            await ctx.guard.failure(
                attempt,
                verdict,
                user_id=user.user_id if user is not None else None,
                account_id=user.account_id if user is not None else None,
            )
            return _oauth_error(401, "unauthorized", "bad credentials")
    elif grant == "refresh_token":
        presented = form.get("refresh_token", "")
        if not presented:
            return _oauth_error(400, "invalid_request", "refresh_token is required")
        try:
            claims = ctx.tokens.decode(presented, "refresh")
        except TokenError as exc:
            return _oauth_error(401, "unauthorized", str(exc))
        # Single use: only the request that flips used_at may rotate the token.
        result = await db.execute(
            update(RefreshToken)
            .where(RefreshToken.jti == claims.jti, RefreshToken.used_at.is_(None))
            .values(used_at=datetime.now(UTC))
        )
        user = await db.get(User, claims.user_id)
        if (
            getattr(result, "rowcount", 0) != 1
            or user is None
            or user.token_generation != claims.generation
        ):
            await db.rollback()
            return _oauth_error(401, "unauthorized", "the refresh token was used or revoked")
    elif not grant:
        return _oauth_error(400, "invalid_request", "grant_type is required")
    else:
        return _oauth_error(
            400, "unsupported_grant_type", "grant_type must be password or refresh_token"
        )
    answer: dict[str, Any] = {
        "access_token": ctx.tokens.access_token(
            user.account_id, user.user_id, user.token_generation
        ),
        "token_type": "bearer",
        "expires_in": ctx.tokens.access_seconds,
    }
    if want_refresh:
        value, jti, exp = ctx.tokens.refresh_token(
            user.account_id, user.user_id, user.token_generation
        )
        db.add(
            RefreshToken(
                jti=jti,
                user_id=user.user_id,
                generation=user.token_generation,
                expires_at=datetime.fromtimestamp(exp, UTC),
            )
        )
        answer["refresh_token"] = value
    await db.commit()
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


# The production path (the hosted service's sample scripts), the documented one, and plain.
for _path in ("/SonetelAuth/oauth/token", "/SonetelAuth/beta/oauth/token", "/oauth/token"):
    router.add_api_route(
        _path,
        token,
        methods=["POST"],
        responses=TOKEN_DOC,
        summary="Get an access token",
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "grant_type": {
                                    "type": "string",
                                    "enum": ["password", "refresh_token"],
                                },
                                "username": {"type": "string"},
                                "password": {"type": "string"},
                                "refresh": {"type": "string", "enum": ["yes", "no"]},
                                "refresh_token": {"type": "string"},
                            },
                            "required": ["grant_type"],
                        }
                    }
                },
                "required": True,
            }
        },
    )
