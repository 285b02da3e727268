"""Voice apps: list, create, read, change (with ETag/If-Match), delete. HTTP only: the logic
is in apps/voiceapps/service.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.api.deps import AccountAuth, Ctx, Db
from openivr.api.docs import Loose, answers
from openivr.api.envelope import format_date, success, success_rendered
from openivr.api.viewcache import ViewCache
from openivr.apps.promptaudio import warm_in_background
from openivr.apps.voiceapps.service import VoiceAppService, app_etag
from openivr.context import ServerContext
from openivr.settings import Settings
from openivr.store.models import VoiceApp

router = APIRouter(tags=["voiceapp"])

# Checked by apps/voiceapps/schema.py, which names the field in every refusal (a boolean is no number).
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


def put_body(body: VoiceAppIn) -> dict[str, Any]:
    """The fields a create or PUT body carries, as plain data."""
    data = body.model_dump(exclude_unset=True)
    if isinstance(data.get("menu"), dict):
        data["menu"] = {k: v for k, v in data["menu"].items()}
    return data


def service_for(ctx: ServerContext, db: AsyncSession, account_id: str) -> VoiceAppService:
    """The voice-app service of an account, showing apps as this API does."""
    return VoiceAppService(
        db,
        account_id,
        lambda app: app_view(app, ctx.settings),
        allow_private_webhooks=ctx.settings.allow_private_webhooks,
    )


@router.get("/account/{account_id}/voiceapp", responses=answers(list[VoiceAppOut]))
async def list_apps(
    request: Request, account_id: str, who: AccountAuth, ctx: Ctx, db: Db
) -> JSONResponse:
    """All voice apps of the account."""
    apps = await service_for(ctx, db, account_id).all()
    return success(request, [app_view(a, ctx.settings) for a in apps])


@router.post("/account/{account_id}/voiceapp", responses=answers(VoiceAppOut, 409))
async def create_voiceapp(
    request: Request, account_id: str, body: VoiceAppIn, who: AccountAuth, ctx: Ctx, db: Db
) -> JSONResponse:
    """Create a voice app; its standard prompts come with it."""
    app = await service_for(ctx, db, account_id).create(put_body(body))
    warm_in_background(ctx.sessions, ctx.sounds, account_id, app.app_id)
    return success(request, app_view(app, ctx.settings), headers={"ETag": app_etag(app)})


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
            app = await service_for(ctx, db, account_id).one(app_id)
        view = app_view(app, ctx.settings)
        found = views.put(app_id, account_id, who.config_revision, view, app_etag(app))
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
    app = await service_for(ctx, db, account_id).change(app_id, put_body(body), if_match)
    # Menus name what their digits lead to: re-render while the change is fresh.
    warm_in_background(ctx.sessions, ctx.sounds, account_id, app_id)
    return success(request, app_view(app, ctx.settings), headers={"ETag": app_etag(app)})


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
    app = await service_for(ctx, db, account_id).remove(app_id, force=force)
    return success(request, app_view(app, ctx.settings))
