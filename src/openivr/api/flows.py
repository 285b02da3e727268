"""Beyond the hosted service: simulate a call, validate an app, draw its flow."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from openivr.api.deps import AccountAuth, Ctx, Db
from openivr.api.docs import Loose, answers
from openivr.api.envelope import success
from openivr.api.errors import ApiError
from openivr.api.voiceapps import VoiceAppIn, put_body, service_for
from openivr.apps import simulation
from openivr.apps.validation import FieldError
from openivr.apps.voiceapps.service import load_app
from openivr.engine.config import AppConfig, ConfigError
from openivr.engine.graph import graph
from openivr.engine.hours import instant
from openivr.engine.simulator import SimulationError
from openivr.engine.timeline import TIMELINE_SCHEMA, TimelineError
from openivr.engine.validate import validate
from openivr.store.snapshot import AccountSnapshot, load_snapshot

router = APIRouter(tags=["voiceapp"])


def _inlined(schema: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema with its local `$ref`s replaced by their definitions (for OpenAPI)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in schema.items() if k not in ("$schema", "$defs")}
    if isinstance(schema, list):
        return [_inlined(v, defs) for v in schema]
    return schema


_TIMELINE = _inlined(TIMELINE_SCHEMA, TIMELINE_SCHEMA["$defs"])
_TIMELINE_DOC = (
    'What the caller does, in order: a string of keys (`"12#"`), or a list of steps, each one '
    'of `{"key": "1", "after": 2.5}` (press 2.5 s after the line went quiet), '
    '`{"key": "1", "during": "menu", "after": 0.5}` (while a prompt plays), '
    '`{"key": "2", "at": 0}` (at that second of the call, whatever plays), '
    '`{"hangup": true, "after": 3}`, `{"record": 12, "end": "key"|"silence"|"hangup"}` '
    '(speak 12 s into a mailbox) or `{"transfer": "answered"|"busy"|"no_answer"|'
    '"unreachable", "after": 4}` (how the next transfer ends); also `{"keys"}` or '
    '`{"steps"}`. When it runs out the caller is silent and the app\'s timers run.'
)


class SimulateIn(BaseModel):
    """A simulated call: who calls, and what they press when (`keys` or `timeline`)."""

    model_config = ConfigDict(extra="forbid")
    caller: str | None = Field(None, description="The caller's number (default anonymous)")
    dialed: str | None = Field(None, description="What was dialled (default the app's shortcode)")
    keys: str | None = Field(None, description="Keys pressed one after another, e.g. 1#")
    timeline: Annotated[Any, WithJsonSchema({**_TIMELINE, "description": _TIMELINE_DOC})] = None
    at: str | None = Field(
        None,
        description="The instant of the call with its offset, e.g. 2026-12-24T10:00:00+01:00 "
        "(default: now); opening hours are decided from it",
    )


@router.post(
    "/account/{account_id}/voiceapp/{app_id}/simulate",
    responses=answers(Loose) | {200: {"content": {"audio/wav": {}, "application/json": {}}}},
)
async def simulate_call(
    request: Request,
    account_id: str,
    app_id: str,
    body: SimulateIn,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
    format: Annotated[
        Literal["json", "wav"], Query(description="json transcript or the audio")
    ] = "json",
) -> Response:
    """Run the call engine on the saved configuration with simulated time."""
    app = await load_app(db, account_id, app_id)
    if app.app_type == "sysprompt":
        raise FieldError("app_id", "a sysprompt app does not take calls")
    if body.keys is not None and body.timeline is not None:
        raise FieldError("timeline", "give keys or timeline, not both")
    timeline: Any = body.timeline if body.timeline is not None else (body.keys or "")
    try:
        # This endpoint drives the engine: it gives the time (now, unless the body says).
        at = instant(body.at) if body.at is not None else datetime.now(UTC)
    except ConfigError as exc:
        raise FieldError(exc.field, exc.reason) from None
    snapshot = await load_snapshot(db, account_id, sip_domain=ctx.settings.sip_domain)
    reach = await simulation.reachability_now(db, ctx.settings, account_id)
    sounds = ctx.sounds
    dialed = body.dialed or app.shortcode
    caller = body.caller or "anonymous"
    try:
        transcript = await asyncio.to_thread(
            simulation.run, snapshot, sounds, app_id, caller, dialed, timeline, reach, at
        )
    except (TimelineError, SimulationError) as exc:
        detail = str(exc)
        if body.keys is not None and detail.startswith("timeline"):
            detail = "keys" + detail.removeprefix("timeline")  # name the field that was sent
        raise ApiError("invalid_field", detail) from None
    if format == "wav":
        wav = await asyncio.to_thread(simulation.render_wav, transcript, snapshot, sounds)
        return Response(wav, media_type="audio/wav")
    return success(request, transcript.to_dict(), resource="simulate")


@router.get("/account/{account_id}/voiceapp/{app_id}/validate", responses=answers(Loose))
async def validate_app(
    request: Request, account_id: str, app_id: str, who: AccountAuth, ctx: Ctx, db: Db
) -> JSONResponse:
    """The problems a caller would meet in this app now, before they meet them."""
    await load_app(db, account_id, app_id)
    snapshot = await load_snapshot(db, account_id, sip_domain=ctx.settings.sip_domain)
    return await _problems(request, ctx, db, snapshot, app_id)


async def _problems(
    request: Request, ctx: Ctx, db: Db, snapshot: AccountSnapshot, app_id: str
) -> JSONResponse:
    # The same facts a real call would find now: this node's trunk, the phones registered.
    reach = await simulation.reachability_now(db, ctx.settings, snapshot.account_id)
    problems = [p.to_dict() for p in validate(snapshot.config, app_id, reach)]
    return success(
        request,
        {
            "app_id": app_id,
            "ok": not any(p["severity"] == "error" for p in problems),
            "problems": problems,
        },
        resource="validate",
    )


@router.get("/account/{account_id}/voiceapp/{app_id}/graph", responses=answers(Loose))
async def draw_graph(
    request: Request,
    account_id: str,
    app_id: str,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
    format: Annotated[Literal["json", "mermaid", "dot"], Query()] = "json",
) -> Response:
    """The flow from this app through every app it reaches, as JSON, Mermaid or Graphviz dot."""
    await load_app(db, account_id, app_id)
    snapshot = await load_snapshot(db, account_id, sip_domain=ctx.settings.sip_domain)
    return _drawing(request, snapshot, app_id, format)


def _drawing(request: Request, snapshot: AccountSnapshot, app_id: str, format: str) -> Response:
    drawn = graph(snapshot.config, app_id)
    if format == "mermaid":
        return Response(drawn.to_mermaid(), media_type="text/plain; charset=utf-8")
    if format == "dot":
        return Response(drawn.to_dot(), media_type="text/vnd.graphviz; charset=utf-8")
    return success(request, drawn.to_dict(), resource="graph")


async def _draft(
    ctx: Ctx, db: Db, account_id: str, app_id: str, body: VoiceAppIn
) -> AccountSnapshot:
    """The account as it would be after a PUT of `body` to the app (nothing is saved)."""
    service = service_for(ctx, db, account_id)
    app = await service.one(app_id)
    name, cfg = await service.proposed(app, put_body(body))
    domain = ctx.settings.sip_domain
    snapshot = await load_snapshot(db, account_id, sip_domain=domain)
    view = {"app_id": app_id, "app_type": app.app_type, "name": name or app.name, **cfg}
    view["sip_address"] = f"{app_id}@{domain}"
    snapshot.config.apps[app_id] = AppConfig.from_api(view, account_id=account_id)
    return snapshot


@router.post("/account/{account_id}/voiceapp/{app_id}/validate", responses=answers(Loose))
async def validate_draft(
    request: Request,
    account_id: str,
    app_id: str,
    body: VoiceAppIn,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
) -> JSONResponse:
    """The problems the app would have with these changes (a PUT's body), before saving them."""
    return await _problems(
        request, ctx, db, await _draft(ctx, db, account_id, app_id, body), app_id
    )


@router.post("/account/{account_id}/voiceapp/{app_id}/graph", responses=answers(Loose))
async def draw_draft(
    request: Request,
    account_id: str,
    app_id: str,
    body: VoiceAppIn,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
    format: Annotated[Literal["json", "mermaid", "dot"], Query()] = "json",
) -> Response:
    """The flow as it would be with these changes (a PUT's body), before saving them."""
    return _drawing(request, await _draft(ctx, db, account_id, app_id, body), app_id, format)
