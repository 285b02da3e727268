"""Prompts of voice apps and their messages (uploaded WAV or text to speech): HTTP only; the
logic is in apps/prompts/service.py."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, get_type_hints

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from openivr.api.deps import AccountAuth, Auth, Ctx, Db, Principal
from openivr.api.docs import Loose, answers
from openivr.api.envelope import format_date, success
from openivr.api.errors import ApiError
from openivr.api.tts import rendered_link
from openivr.apps import validation as v
from openivr.apps.prompts.service import DefaultRecording, PromptService
from openivr.audio.wav import MAX_UPLOAD_BYTES
from openivr.context import ServerContext
from openivr.store.models import Prompt

router = APIRouter(tags=["prompt"])


class PromptIn(BaseModel):
    """A prompt's name; what a GET shows may be sent back (ids and type unchanged)."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None


class PromptOut(Loose):
    """A prompt as the API shows it."""

    prompt_id: str | None = None
    type: str | None = None
    name: str | None = None
    app_id: str | None = None
    record_code: int | None = Field(
        None, description="Dial *22 from a phone registered as a user, then this and # to record it"
    )
    exists: bool | None = None
    audio_length: float | None = None
    message_url: str | None = None


def prompt_view(
    p: Prompt, ctx: ServerContext, default: DefaultRecording | None = None
) -> dict[str, Any]:
    """The public shape of a prompt, with its message details (or its default's)."""
    view: dict[str, Any] = {
        "prompt_id": p.prompt_id,
        "type": p.prompt_type,
        "name": p.name,
        "key": p.key,
        "app_id": p.app_id,
        "account_id": p.account_id,
        "record_code": p.record_code,
        "create_date": format_date(p.created_at),
        "record_path": f"/prompt/{p.prompt_id}/message",
    }
    if p.message_key:
        path = f"/audio/prompt/{p.message_key}.wav"
        signed = ctx.urls.sign(path)
        source = {
            "upload": "uploaded recording",
            "phone": "recorded by phone",
            "tts": "text to speech",
        }.get(p.message_source, "custom")
        view.update(
            exists=True,
            record_id=p.message_key.split("/", 1)[1],
            file_name=p.file_name,
            file_details=f"custom message ({source}), 8 kHz mono 16-bit after normalisation",
            play_path=signed,
            audio_length=round(p.audio_length, 3),
            size=round(p.size_bytes / 1024, 1),
            message_url=ctx.settings.base_url + signed,
        )
        if p.message_source == "tts":
            view.update(message_text=p.message_text, message_voice=p.message_voice)
    elif default is not None:
        sound, voice = default.sound, default.voice
        path, url = rendered_link(ctx, sound.cache_key)
        view.update(
            exists=False,
            record_id="",
            file_name=f"default-{p.key}-{voice}.wav",
            file_details=f"default recording in voice {voice} (eSpeak NG): {sound.text}",
            default_text=sound.text,
            default_voice=voice,
            play_path=path,
            audio_length=round(sound.audio.duration, 3),
            size=round((len(sound.audio.pcm) * 2 + 44) / 1024, 1),
            message_url=url,
        )
    else:
        view.update(
            exists=False,
            record_id="",
            file_name="",
            file_details="no message: this custom prompt is silent until one is set",
            play_path="",
            audio_length=0,
            size=0,
            message_url="",
        )
    return view


def _service(ctx: ServerContext, db: AsyncSession, account_id: str) -> PromptService:
    return PromptService(db, account_id, ctx.sounds)


async def _answer(
    request: Request, ctx: ServerContext, service: PromptService, prompt: Prompt, status: int = 200
) -> JSONResponse:
    """The answer about one prompt, with its default recording's details when it plays one."""
    defaults = await service.defaults([prompt])
    view = prompt_view(prompt, ctx, defaults.get(prompt.prompt_id))
    return success(request, view, status=status, resource="prompt")


# --- collection ---------------------------------------------------------------------------


@router.get("/account/{account_id}/voiceapp/{app_id}/prompt", responses=answers(list[PromptOut]))
async def list_prompts(
    request: Request, account_id: str, app_id: str, who: AccountAuth, ctx: Ctx, db: Db
) -> JSONResponse:
    """The app's standard prompts, then its custom prompts."""
    service = _service(ctx, db, account_id)
    prompts = await service.all(app_id)
    defaults = await service.defaults(prompts)
    return success(request, [prompt_view(p, ctx, defaults.get(p.prompt_id)) for p in prompts])


@router.post(
    "/account/{account_id}/voiceapp/{app_id}/prompt",
    responses=answers(PromptOut),
)
async def create_prompt(
    request: Request,
    account_id: str,
    app_id: str,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
    body: PromptIn | None = None,
    name: Annotated[
        str | None, Query(description="The prompt's name (or in the JSON body)")
    ] = None,
) -> JSONResponse:
    """Create a custom prompt by name."""
    service = _service(ctx, db, account_id)
    fields = body.model_dump(exclude_unset=True) if body is not None else None
    prompt = await service.create(app_id, fields, name)
    return await _answer(request, ctx, service, prompt)


# --- one prompt, at both of its paths -------------------------------------------------------


@dataclass(frozen=True)
class PromptAt:
    """The prompt a request names: by id, and under its app when the long path is used."""

    who: Principal
    prompt_id: str
    app_id: str | None


async def _under_app(app_id: str, prompt_id: str, who: AccountAuth) -> PromptAt:
    return PromptAt(who, prompt_id, app_id)


async def _by_id(prompt_id: str, who: Auth) -> PromptAt:
    return PromptAt(who, prompt_id, None)


# Each route on one prompt answers at both paths the compatible API has: under its app (the
# path's account must be the token's) and by id alone.
_PATHS = (
    ("/account/{account_id}/voiceapp/{app_id}/prompt/{prompt_id}", _under_app, ""),
    ("/prompt/{prompt_id}", _by_id, "_short"),
)
Handler = TypeVar("Handler", bound=Callable[..., Awaitable[JSONResponse]])


def one_prompt(method: str, tail: str = "", **route: Any) -> Callable[[Handler], Handler]:
    """Declare a handler taking `at: PromptAt` once, routed at both paths of a prompt (+ tail)."""

    def declare(handler: Handler) -> Handler:
        hints = get_type_hints(handler, include_extras=True)
        signature = inspect.signature(handler)
        for base, locate, suffix in _PATHS:
            params = [
                param.replace(
                    annotation=Annotated[PromptAt, Depends(locate)] if name == "at" else hints[name]
                )
                for name, param in signature.parameters.items()
            ]

            async def endpoint(*args: Any, **kwargs: Any) -> JSONResponse:
                return await handler(*args, **kwargs)

            endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
                parameters=params, return_annotation=hints["return"]
            )
            endpoint.__name__ = endpoint.__qualname__ = handler.__name__ + suffix
            endpoint.__doc__ = handler.__doc__
            router.add_api_route(base + tail, endpoint, methods=[method], **route)
        return handler

    return declare


async def _located(
    ctx: ServerContext, db: AsyncSession, at: PromptAt
) -> tuple[PromptService, Prompt]:
    service = _service(ctx, db, at.who.account_id)
    return service, await service.one(at.prompt_id, at.app_id)


@one_prompt("GET", responses=answers(PromptOut))
async def get_prompt(request: Request, at: PromptAt, ctx: Ctx, db: Db) -> JSONResponse:
    """One prompt with its message details (?fields=message asks for them, as the hosted API)."""
    service, prompt = await _located(ctx, db, at)
    return await _answer(request, ctx, service, prompt)


@one_prompt("PUT", responses=answers(PromptOut))
async def put_prompt(
    request: Request, at: PromptAt, body: PromptIn, ctx: Ctx, db: Db
) -> JSONResponse:
    """Rename a custom prompt."""
    service, prompt = await _located(ctx, db, at)
    renamed = await service.rename(prompt, body.model_dump(exclude_unset=True))
    return await _answer(request, ctx, service, renamed)


@one_prompt("DELETE", responses=answers(PromptOut, 409))
async def delete_prompt(
    request: Request,
    at: PromptAt,
    ctx: Ctx,
    db: Db,
    force: Annotated[bool, Query(description="Clear menus that play this prompt")] = False,
) -> JSONResponse:
    """Delete a custom prompt (409 while a menu plays it, unless force=true)."""
    service, prompt = await _located(ctx, db, at)
    removed = await service.remove(prompt, force=force)
    return success(request, prompt_view(removed, ctx), resource="prompt")


# --- messages -----------------------------------------------------------------------------

MESSAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"text": {"type": "string"}, "voice": {"type": "string"}},
                    "required": ["text"],
                }
            },
        },
    }
}


async def _upload(request: Request) -> tuple[str, bytes]:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_UPLOAD_BYTES + 256 * 1024:
        raise ApiError(
            "too_large", f"file: uploads are limited to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"
        )
    try:
        form = await request.form(max_files=1, max_fields=10)
    except Exception:  # the multipart parser's errors are the client's broken body
        raise ApiError("invalid_field", "file: the multipart body could not be parsed") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(
            "missing_field", "file: a multipart field named 'file' with a WAV is required"
        )
    name = upload.filename or "upload.wav"
    refusal = v.control_character(name, multiline=False)
    if refusal is not None:
        raise v.FieldError("file", f"the file name {refusal}")
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if not data:
        raise ApiError("invalid_audio", "file: the uploaded file is empty")
    return name, data


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError("malformed_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise v.FieldError("body", 'must be an object {"text", "voice"}')
    return body


@one_prompt("POST", "/message", responses=answers(PromptOut, 413, 415), openapi_extra=MESSAGE_BODY)
async def set_message(request: Request, at: PromptAt, ctx: Ctx, db: Db) -> JSONResponse:
    """Set the prompt's message: a WAV upload (field `file`) or JSON {"text", "voice"}."""
    service, prompt = await _located(ctx, db, at)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        file_name, data = await _upload(request)
        prompt = await service.record(prompt, file_name, data)
    elif ctype.startswith("application/json"):
        body = await _json_object(request)
        prompt = await service.speak(prompt, body)
    else:
        raise ApiError(
            "unsupported_media_type",
            'send multipart/form-data with a \'file\' field, or JSON {"text", "voice"}',
        )
    return await _answer(request, ctx, service, prompt)


@one_prompt("DELETE", "/message", responses=answers(PromptOut))
async def clear_message(request: Request, at: PromptAt, ctx: Ctx, db: Db) -> JSONResponse:
    """Remove the custom message: the prompt plays its default again."""
    service, prompt = await _located(ctx, db, at)
    return await _answer(request, ctx, service, await service.clear_message(prompt))


# --- signed audio ---------------------------------------------------------------------------


@router.get(
    "/audio/prompt/{prompt_id}/{record_file}",
    responses={200: {"content": {"audio/wav": {}}}, 403: {}, 404: {}},
    tags=["audio"],
)
async def prompt_audio(
    request: Request,
    prompt_id: str,
    record_file: str,
    ctx: Ctx,
    expires: str | None = None,
    sig: str | None = None,
    original: bool = False,
) -> Response:
    """A prompt message's WAV through a signed, expiring URL (no token; range requests work)."""
    path = f"/audio/prompt/{prompt_id}/{record_file}"
    if not ctx.urls.verify(path, expires, sig):
        raise ApiError("bad_signature", "the link's signature is wrong or has expired")
    record_id = record_file.removesuffix(".wav")
    store = ctx.audio_store
    key = f"{prompt_id}/{record_id}"
    file = store.original_path(key) if original else store.wav_path(key)
    if not file.exists():
        raise ApiError("not_found", "this recording was replaced or deleted")
    return FileResponse(file, media_type="audio/wav")
