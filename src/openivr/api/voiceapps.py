"""Voice apps: list, create, read, change (with ETag/If-Match), delete."""

from __future__ import annotations

import asyncio
import random
import weakref
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.api.deps import AccountAuth, Ctx, Db
from openivr.api.docs import Loose, answers
from openivr.api.envelope import format_date, success, success_rendered
from openivr.api.errors import ApiError, not_found
from openivr.api.viewcache import ViewCache
from openivr.apps import voiceapp as va
from openivr.apps.promptaudio import warm_in_background
from openivr.apps.validation import FieldError, known_fields
from openivr.delivery import webhook
from openivr.engine.vocabulary import APP_TYPES
from openivr.settings import Settings
from openivr.store.models import Prompt, VoiceApp, utcnow
from openivr.store.references import release
from openivr.store.revision import bump_statement
from openivr.store.voiceapps import account_apps, account_refs, create_app

router = APIRouter(tags=["voiceapp"])

# Checked by apps/voiceapp.py, which names the field in every refusal (a boolean is no number).
Flag = Annotated[
    Any, WithJsonSchema({"anyOf": [{"type": "string", "enum": ["yes", "no"]}, {"type": "boolean"}]})
]
Num = Annotated[Any, WithJsonSchema({"type": "number"})]


class ActionIn(BaseModel):
    """What a menu key, the timeout, a final action or a closed action does:
    `{"action", "to", "id"}`. `null` for `to` or `id` means empty.

    | action | to | id | effect |
    |---|---|---|---|
    | `call` | `user` | user id | ring the user's registered phones, else their `sip_uri`, else their `phnum` |
    | `call` | `phnum` | E.164 number (`+46...`) | call the number out through the trunk |
    | `call` | `other` | a SIP address (`user@host`, with or without `sip:`) or an E.164 number | a SIP address is called as `sip` (an app's own `sip_address` enters that app without leaving the node); a number as `phnum` |
    | `call` | `sip` | SIP URI (`sip:anna@pbx.example.com`) | call that SIP address |
    | `call` | `csg` | team id | ring a team |
    | `connect` | `app` | voice app id | hand the call to another app (menu, announcement, mailbox) |
    | `play` | `prompt` | prompt id | play the prompt, then the menu again |
    | `repeat` | `""` | `""` | play the menu again |
    | `hangup` | `""` | `""` | end the call |
    | `disconnect` | `null` or `""` | `null` or `""` | take the key out of use (stored as `""`) |
    | `""` | `""` | `""` | the key is not in use |
    """

    model_config = ConfigDict(extra="allow")
    action: str | None = Field(
        None,
        description="call, connect, play, repeat, hangup, disconnect or empty",
        json_schema_extra={
            "enum": ["", "call", "connect", "play", "repeat", "hangup", "disconnect", None]
        },
    )
    to: str | None = Field(
        None,
        description="For call: user, phnum, other, sip or csg; connect: app; play: prompt",
        json_schema_extra={
            "enum": ["", "user", "phnum", "other", "sip", "csg", "app", "prompt", None]
        },
    )
    id: str | int | None = Field(None, description="The user, number, address, app, prompt or team")


class OpenHoursIn(BaseModel):
    """An IVR's opening hours: outside the schedule callers get closed_action instead."""

    model_config = ConfigDict(extra="allow")
    schedule_id: str | None = None
    closed_action: ActionIn | None = None


class VoiceAppIn(BaseModel):
    """Settings of a voice app; which apply depends on app_type. Fields of another app type or
    of no app are refused; the read-only fields a GET returns (`app_id`, `shortcode`, ...) may be
    sent back unchanged."""

    model_config = ConfigDict(extra="allow")
    app_type: str | None = None
    name: str | None = None
    voice: str | None = None
    play_welcome: Flag = None
    play_menu: Flag = None
    get_extension: Flag = None
    menu: dict[str, ActionIn | None] | None = None
    final_action: ActionIn | None = None
    menu_timeout: Num = None
    interdigit_timeout: Num = None
    max_retries: Num = None
    open_hours: OpenHoursIn | None = None
    greeting_prompt: Flag = None
    goodbye_prompt: Flag = None
    deliver_to: str | None = None
    deliver_to_details: str | int | None = None
    max_message_seconds: Num = None
    max_messages: Num = None
    webhook_url: str | None = None
    error_voice: str | None = None
    error_repeat_voice: str | None = None
    usermailbox_voice: str | None = None


class VoiceAppOut(Loose):
    """A voice app as the API shows it."""

    app_id: str | None = None
    app_type: str | None = None
    name: str | None = None
    shortcode: str | None = None
    sip_address: str | None = None
    tts_allowed: str | None = None


def app_view(app: VoiceApp, settings: Settings) -> dict[str, Any]:
    """The public shape of a voice app: settings plus the generated read-only fields."""
    view: dict[str, Any] = {"app_id": app.app_id, "app_type": app.app_type, "name": app.name}
    view.update(app.config)
    view.update(
        shortcode=app.shortcode,
        sip_address=f"{app.app_id}@{settings.sip_domain}",
        tts_allowed="yes",
        account_id=app.account_id,
        create_date=format_date(app.created_at),
    )
    return view


def etag(app: VoiceApp) -> str:
    """The entity tag of an app's current version."""
    return f'"{app.version}"'


def _matches(if_match: str, app: VoiceApp) -> bool:
    tags = [t.strip().removeprefix("W/") for t in if_match.split(",")]
    return "*" in tags or etag(app) in tags


def put_body(body: VoiceAppIn) -> dict[str, Any]:
    """The fields a create or PUT body carries, as plain data."""
    data = body.model_dump(exclude_unset=True)
    if isinstance(data.get("menu"), dict):
        data["menu"] = {k: v for k, v in data["menu"].items()}
    return data


def put_fields(app: VoiceApp, body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The fields of a PUT body that change the app; unknown fields refused, what a GET shows
    (settings of older versions included) accepted back unchanged."""
    shown = (*va.READ_ONLY, *app.config)
    return known_fields(body, va.writable_fields(app.app_type), shown, app_view(app, settings))


async def _check_webhook(data: dict[str, Any], settings: Settings) -> None:
    """Refuse a webhook_url this node may not post to (see delivery/webhook.py)."""
    url = data.get("webhook_url")
    if isinstance(url, str) and url.strip():
        refusal = await webhook.target_refusal(url.strip(), settings.allow_private_webhooks)
        if refusal is not None:
            raise FieldError(
                "webhook_url", f"{refusal}; a node started with --allow-private-webhooks takes it"
            )


async def load_app(
    db: AsyncSession, account_id: str, app_id: str, for_update: bool = False
) -> VoiceApp:
    """An app of the account, or 404; `for_update` locks its row (PostgreSQL) until commit."""
    if for_update:
        app = await db.scalar(
            select(VoiceApp)
            .where(VoiceApp.app_id == app_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    else:
        app = await db.get(VoiceApp, app_id)
    if app is None or app.account_id != account_id:
        raise not_found("voice app", app_id)
    return app


@router.get("/account/{account_id}/voiceapp", responses=answers(list[VoiceAppOut]))
async def list_apps(
    request: Request, account_id: str, who: AccountAuth, ctx: Ctx, db: Db
) -> JSONResponse:
    """All voice apps of the account."""
    apps = await account_apps(db, account_id)
    return success(request, [app_view(a, ctx.settings) for a in apps])


@router.post("/account/{account_id}/voiceapp", responses=answers(VoiceAppOut, 409))
async def create_voiceapp(
    request: Request, account_id: str, body: VoiceAppIn, who: AccountAuth, ctx: Ctx, db: Db
) -> JSONResponse:
    """Create a voice app; its standard prompts come with it."""
    data = put_body(body)
    app_type = data.get("app_type")
    if not app_type:
        raise ApiError("missing_field", "app_type: is required (ivr, mailbox or sysprompt)")
    if app_type not in APP_TYPES:
        raise FieldError("app_type", f"must be one of {', '.join(APP_TYPES)}; got {app_type!r}")
    if "name" not in data:
        raise ApiError("missing_field", "name: is required")
    data = known_fields(data, va.writable_fields(app_type), va.READ_ONLY)
    await _check_webhook(data, ctx.settings)
    if app_type == "sysprompt":
        existing = [a for a in await account_apps(db, account_id) if a.app_type == "sysprompt"]
        if existing:
            raise ApiError(
                "duplicate", f"app_type: the account already has sysprompt app {existing[0].app_id}"
            )
    refs = await account_refs(db, account_id)
    name, cfg = va.build_config(app_type, data, refs)
    app = await create_app(db, account_id, app_type, name or "", cfg)
    await db.commit()
    warm_in_background(ctx.sessions, ctx.sounds, account_id, app.app_id)
    return success(request, app_view(app, ctx.settings), headers={"ETag": etag(app)})


@router.get("/account/{account_id}/voiceapp/{app_id}", responses=answers(VoiceAppOut))
async def get_voiceapp(
    request: Request, account_id: str, app_id: str, who: AccountAuth, ctx: Ctx
) -> Response:
    """One voice app, with its ETag."""
    # The hottest read of the API: kept rendered while the account's revision holds.
    views: ViewCache = request.app.state.voiceapp_views
    found = views.get(app_id, account_id, who.config_revision)
    if found is None:
        async with ctx.sessions() as db:
            app = await load_app(db, account_id, app_id)
        view = app_view(app, ctx.settings)
        found = views.put(app_id, account_id, who.config_revision, view, etag(app))
    headers = {"ETag": found.etag}
    if request.query_params.get("fields"):
        return success(request, found.view, headers=headers)
    return success_rendered(request, found.body, headers=headers)


@router.put("/account/{account_id}/voiceapp/{app_id}", responses=answers(VoiceAppOut, 412))
async def put_voiceapp(
    request: Request,
    account_id: str,
    app_id: str,
    body: VoiceAppIn,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
    if_match: Annotated[str | None, Header(description="ETag from a GET: 412 if stale")] = None,
) -> JSONResponse:
    """Change the fields the body carries; others keep their values. app_type cannot change."""
    data = put_body(body)
    async with _writer_lock(app_id):
        await _check_webhook(data, ctx.settings)
        await _apply_put(db, account_id, app_id, data, if_match, ctx.settings)
    db.expunge_all()
    app = await load_app(db, account_id, app_id)
    # Menus name what their digits lead to: re-render while the change is fresh.
    warm_in_background(ctx.sessions, ctx.sounds, account_id, app_id)
    return success(request, app_view(app, ctx.settings), headers={"ETag": etag(app)})


_writers: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def _writer_lock(app_id: str) -> asyncio.Lock:
    """Writers of one app on this node take turns; other nodes wait on the row lock."""
    lock = _writers.get(app_id)
    if lock is None:
        lock = _writers[app_id] = asyncio.Lock()
    return lock


async def _apply_put(
    db: AsyncSession,
    account_id: str,
    app_id: str,
    body: dict[str, Any],
    if_match: str | None,
    settings: Settings,
) -> None:
    # Compare-and-swap on the version: writers never overwrite each other's fields. The row
    # lock makes them queue on PostgreSQL; SQLite has no row locks, so a lost race retries.
    for attempt in range(20):
        app = await load_app(db, account_id, app_id, for_update=True)
        if if_match is not None and not _matches(if_match, app):
            raise ApiError(
                "precondition_failed", f"If-Match {if_match} is stale; current ETag is {etag(app)}"
            )
        if body.get("app_type") not in (None, app.app_type):
            raise ApiError("immutable_field", f"app_type: is {app.app_type} and cannot change")
        data = put_fields(app, body, settings)
        refs = await account_refs(db, account_id)
        name, cfg = va.build_config(app.app_type, data, refs, current=app.config, app_id=app_id)
        version = app.version
        result = await db.execute(
            update(VoiceApp)
            .where(VoiceApp.app_id == app_id, VoiceApp.version == version)
            .values(
                config=cfg,
                name=name if name is not None else app.name,
                version=version + 1,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            await db.execute(bump_statement([account_id]))
            await db.commit()
            return
        await db.rollback()
        if if_match is not None:
            raise ApiError("precondition_failed", "the app changed while this request was applied")
        db.expunge_all()
        await asyncio.sleep(random.uniform(0.001, 0.005) * (attempt + 1))
    raise ApiError("precondition_failed", "the app is changing too often; retry")


@router.delete("/account/{account_id}/voiceapp/{app_id}", responses=answers(VoiceAppOut, 409))
async def delete_voiceapp(
    request: Request,
    account_id: str,
    app_id: str,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
    force: Annotated[
        bool, Query(description="Clear menus and numbers pointing at the app")
    ] = False,
) -> JSONResponse:
    """Delete an app for good; 409 while menus or numbers point at it, unless force=true."""
    app = await load_app(db, account_id, app_id)
    if app.app_type == "sysprompt":
        raise ApiError(
            "required",
            "the sysprompt app speaks the account's system messages; it cannot be deleted",
        )
    prompt_ids = (await db.scalars(select(Prompt.prompt_id).where(Prompt.app_id == app_id))).all()
    # Its own menus playing its own prompts go with it.
    await release(
        db,
        account_id,
        [("app", app_id), *(("prompt", pid) for pid in prompt_ids)],
        force=force,
        in_use="the app is still used by",
        owner=app_id,
    )
    view = app_view(app, ctx.settings)
    await db.delete(app)
    await db.commit()
    return success(request, view)
