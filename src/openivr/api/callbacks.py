"""Callback calls (the hosted API's "Make calls"): ring call1, then call2, and connect them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from openivr.api.deps import Auth, Ctx, Db
from openivr.api.docs import answers
from openivr.api.errors import ApiError
from openivr.apps.callbacks.schema import CallbackRefused
from openivr.apps.callbacks.service import CallbackPlanner

router = APIRouter(tags=["call"])

_PARTY = (
    "A phone number (E.164 with +), a SIP address (sip:user@host), or a user of the account "
    "by user id or e-mail (rung on their registered phones, else sip_uri, else phnum)"
)
_SHOW = "'automatic' (default) or a phone number of the account"


class CallbackIn(BaseModel):
    """Who to call first, who to connect them to, and the caller id each sees."""

    model_config = ConfigDict(extra="forbid")
    app_id: str | None = Field(None, description="Free text naming the client (for the record)")
    call1: str | None = Field(None, description=f"Called first. {_PARTY}")
    call2: str | None = Field(None, description=f"Called once call1 answers. {_PARTY}")
    show_1: str | None = Field(None, description=f"Caller id call1 sees: {_SHOW}")
    show_2: str | None = Field(None, description=f"Caller id call2 sees: {_SHOW}")


class SessionOut(BaseModel):
    """The callback's session; its progress and outcome are in the call records."""

    session_id: str


class CallbackOut(BaseModel):
    """The hosted API's answer (`statusCode` 202: accepted) inside OpenIVR's envelope."""

    resource: str
    status: str
    statusCode: int  # noqa: N815 (the hosted API's name)
    response: SessionOut


@router.post(
    "/make-calls/call/call-back",
    responses={**answers(SessionOut, 503), 200: {"model": CallbackOut}},
)
async def call_back(
    request: Request, body: CallbackIn, who: Auth, ctx: Ctx, db: Db
) -> JSONResponse:
    """Call `call1`; once it answers, call `call2` (call1 hears ringback meanwhile) and connect
    them. Answers at once with the session id, which is the `call_id` of the session's call
    record (`GET /account/{id}/call`): both legs, who answered when, how it ended."""
    settings = ctx.settings
    planner = CallbackPlanner(
        db, who.account_id, trunk=bool(settings.sip_trunk), sip_domain=settings.sip_domain
    )
    plan = await planner.plan(who.user_id, body.model_dump())
    await db.rollback()  # nothing written; the session is not held while the call is placed
    placer = ctx.callbacks
    if placer is None:
        raise ApiError("unavailable", "this node places no calls (SIP is off: --sip-port 0)")
    try:
        await placer.place(plan)
    except CallbackRefused as exc:
        raise ApiError("unavailable", str(exc)) from None
    # HTTP 200 with statusCode 202 in the body: the hosted API's SDK parses bodies on 200 only.
    return JSONResponse(
        {
            "resource": "call",
            "status": "success",
            "statusCode": 202,
            "response": {"session_id": plan.session_id},
        }
    )
