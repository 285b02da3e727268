"""Prompts of voice apps and their messages (uploaded WAV or text to speech)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from openivr.api.deps import AccountAuth, Auth, Ctx, Db, Principal
from openivr.api.docs import Loose, answers
from openivr.api.envelope import success
from openivr.api.errors import ApiError, not_found
from openivr.api.tts import render_text, rendered_link
from openivr.apps import validation as v
from openivr.apps.promptaudio import PromptSounds
from openivr.audio.wav import MAX_UPLOAD_BYTES, AudioFormatError, parse_wav
from openivr.context import ServerContext
from openivr.engine.vocabulary import VOICES
from openivr.store import ids
from openivr.store.models import Prompt, VoiceApp, utcnow
from openivr.store.references import release
from openivr.store.snapshot import load_snapshot
from openivr.store.voiceapps import format_date

log = logging.getLogger(__name__)
router = APIRouter(tags=["prompt"])
_AUDIO_STATUS = {
    "file_too_large": 413,
    "not_wav": 415,
    "compressed_format": 415,
}


class PromptIn(BaseModel):
    """A prompt's name; what a GET shows may be sent back (ids and type unchanged)."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None


# What a GET shows: the identity must come back unchanged; the message details (signed links,
# sizes) are derived and ignored.
IDENTITY = ("prompt_id", "type", "key", "app_id", "account_id")
SHOWN = (
    *IDENTITY,
    "create_date",
    "record_path",
    "exists",
    "record_id",
    "file_name",
    "file_details",
    "play_path",
    "audio_length",
    "size",
    "message_url",
    "message_text",
    "message_voice",
    "default_text",
    "default_voice",
)


class PromptOut(Loose):
    """A prompt as the API shows it."""

    prompt_id: str | None = None
    type: str | None = None
    name: str | None = None
    app_id: str | None = None
    exists: bool | None = None
    audio_length: float | None = None
    message_url: str | None = None


def audio_error(exc: AudioFormatError) -> ApiError:
    """The API error of an upload the audio layer refused."""
    status = _AUDIO_STATUS.get(exc.code, 415 if exc.code.startswith("unsupported") else 400)
    code = {413: "too_large", 415: "unsupported_media_type"}.get(status, "invalid_audio")
    return ApiError(code, f"file: {exc.detail}", status)


def prompt_view(
    p: Prompt, ctx: ServerContext, default: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The public shape of a prompt, with its message details (or its default's)."""
    view: dict[str, Any] = {
        "prompt_id": p.prompt_id,
        "type": p.prompt_type,
        "name": p.name,
        "key": p.key,
        "app_id": p.app_id,
        "account_id": p.account_id,
        "create_date": format_date(p.created_at),
        "record_path": f"/prompt/{p.prompt_id}/message",
    }
    if p.message_key:
        path = f"/audio/prompt/{p.message_key}.wav"
        signed = ctx.urls.sign(path)
        source = {"upload": "uploaded recording", "tts": "text to speech"}.get(
            p.message_source, "custom"
        )
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
        view.update(exists=False, record_id="", **default)
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


async def defaults_of(
    ctx: ServerContext, db: AsyncSession, prompts: list[Prompt]
) -> dict[str, dict[str, Any]]:
    """Details of the default recordings of standard prompts without a custom message."""
    need = [p for p in prompts if not p.message_key and p.prompt_type == "standard"]
    if not need:
        return {}
    snapshot = await load_snapshot(db, need[0].account_id)
    sounds: PromptSounds = ctx.sounds
    found: dict[str, dict[str, Any]] = {}
    for p in need:
        ref = snapshot.config.prompt(p.account_id, p.prompt_id)
        app = snapshot.apps.get(p.app_id)
        if ref is None or app is None:
            continue
        voice = app.config.get("voice", "en")
        sound = await sounds.resolve_async(snapshot, ref, voice)
        if sound is None:
            continue
        path, url = rendered_link(ctx, sound.cache_key)
        found[p.prompt_id] = {
            "file_name": f"default-{p.key}-{voice}.wav",
            "file_details": f"default recording in voice {voice} (eSpeak NG): {sound.text}",
            "default_text": sound.text,
            "default_voice": voice,
            "play_path": path,
            "audio_length": round(sound.audio.duration, 3),
            "size": round((len(sound.audio.pcm) * 2 + 44) / 1024, 1),
            "message_url": url,
        }
    return found


async def _one(
    request: Request, ctx: ServerContext, db: AsyncSession, prompt: Prompt, status: int = 200
) -> JSONResponse:
    """The answer about one prompt, with its default recording's details when it plays one."""
    defaults = await defaults_of(ctx, db, [prompt])
    view = prompt_view(prompt, ctx, defaults.get(prompt.prompt_id))
    return success(request, view, status=status, resource="prompt")


async def _app(db: AsyncSession, account_id: str, app_id: str) -> VoiceApp:
    app = await db.get(VoiceApp, app_id)
    if app is None or app.account_id != account_id:
        raise not_found("voice app", app_id)
    return app


async def _prompt(
    db: AsyncSession, who: Principal, prompt_id: str, app_id: str | None = None
) -> Prompt:
    prompt = await db.get(Prompt, prompt_id)
    if (
        prompt is None
        or prompt.account_id != who.account_id
        or (app_id and prompt.app_id != app_id)
    ):
        raise not_found("prompt", prompt_id)
    return prompt


# --- collection ---------------------------------------------------------------------------


@router.get("/account/{account_id}/voiceapp/{app_id}/prompt", responses=answers(list[PromptOut]))
async def list_prompts(
    request: Request, account_id: str, app_id: str, who: AccountAuth, ctx: Ctx, db: Db
) -> JSONResponse:
    """The app's standard prompts, then its custom prompts."""
    await _app(db, account_id, app_id)
    prompts = (
        await db.scalars(
            select(Prompt)
            .where(Prompt.app_id == app_id)
            .order_by(Prompt.prompt_type.desc(), Prompt.created_at)
        )
    ).all()
    defaults = await defaults_of(ctx, db, list(prompts))
    return success(request, [prompt_view(p, ctx, defaults.get(p.prompt_id)) for p in prompts])


@router.post("/account/{account_id}/voiceapp/{app_id}/prompt", responses=answers(PromptOut))
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
    await _app(db, account_id, app_id)
    if body is not None:
        v.known_fields(body.model_dump(exclude_unset=True), ("name",), SHOWN)
    given = (body.name if body else None) or name
    if given is None:
        raise ApiError("missing_field", 'name: is required (JSON {"name": ...} or ?name=)')
    prompt = Prompt(
        prompt_id=ids.prompt_id(),
        account_id=account_id,
        app_id=app_id,
        prompt_type="custom",
        key="",
        name=v.text("name", given),
    )
    db.add(prompt)
    await db.commit()
    return await _one(request, ctx, db, prompt)


# --- one prompt: long and short forms --------------------------------------------------------


async def _get(
    request: Request,
    who: Principal,
    ctx: ServerContext,
    db: AsyncSession,
    prompt_id: str,
    app_id: str | None,
) -> JSONResponse:
    prompt = await _prompt(db, who, prompt_id, app_id)
    return await _one(request, ctx, db, prompt)


async def _put(
    request: Request,
    who: Principal,
    ctx: ServerContext,
    db: AsyncSession,
    prompt_id: str,
    app_id: str | None,
    body: PromptIn,
) -> JSONResponse:
    prompt = await _prompt(db, who, prompt_id, app_id)
    identity = {k: val for k, val in prompt_view(prompt, ctx).items() if k in IDENTITY}
    v.known_fields(body.model_dump(exclude_unset=True), ("name",), SHOWN, identity)
    if body.name is not None:
        if prompt.prompt_type == "standard":
            raise ApiError("immutable_field", "name: standard prompts keep their names")
        prompt.name = v.text("name", body.name)
        await db.commit()
    return await _one(request, ctx, db, prompt)


async def _delete(
    request: Request,
    who: Principal,
    ctx: ServerContext,
    db: AsyncSession,
    prompt_id: str,
    app_id: str | None,
    force: bool,
) -> JSONResponse:
    prompt = await _prompt(db, who, prompt_id, app_id)
    if prompt.prompt_type == "standard":
        raise ApiError(
            "required",
            "standard prompts cannot be deleted; DELETE its message to restore the default",
        )
    await release(
        db,
        who.account_id,
        [("prompt", prompt_id)],
        force=force,
        in_use="the prompt is still played by",
    )
    view = prompt_view(prompt, ctx)
    await db.delete(prompt)
    await db.commit()
    ctx.audio_store.remove_prompt(prompt_id)
    return success(request, view, resource="prompt")


Force = Annotated[bool, Query(description="Clear menus that play this prompt")]


@router.get(
    "/account/{account_id}/voiceapp/{app_id}/prompt/{prompt_id}", responses=answers(PromptOut)
)
async def get_prompt(
    request: Request,
    account_id: str,
    app_id: str,
    prompt_id: str,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
) -> JSONResponse:
    """One prompt with its message details (?fields=message asks for them, as the hosted API)."""
    return await _get(request, who, ctx, db, prompt_id, app_id)


@router.put(
    "/account/{account_id}/voiceapp/{app_id}/prompt/{prompt_id}", responses=answers(PromptOut)
)
async def put_prompt(
    request: Request,
    account_id: str,
    app_id: str,
    prompt_id: str,
    body: PromptIn,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
) -> JSONResponse:
    """Rename a custom prompt."""
    return await _put(request, who, ctx, db, prompt_id, app_id, body)


@router.delete(
    "/account/{account_id}/voiceapp/{app_id}/prompt/{prompt_id}", responses=answers(PromptOut, 409)
)
async def delete_prompt(
    request: Request,
    account_id: str,
    app_id: str,
    prompt_id: str,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
    force: Force = False,
) -> JSONResponse:
    """Delete a custom prompt (409 while a menu plays it, unless force=true)."""
    return await _delete(request, who, ctx, db, prompt_id, app_id, force)


@router.get("/prompt/{prompt_id}", responses=answers(PromptOut))
async def get_prompt_short(
    request: Request, prompt_id: str, who: Auth, ctx: Ctx, db: Db
) -> JSONResponse:
    """One prompt, by id alone."""
    return await _get(request, who, ctx, db, prompt_id, None)


@router.put("/prompt/{prompt_id}", responses=answers(PromptOut))
async def put_prompt_short(
    request: Request, prompt_id: str, body: PromptIn, who: Auth, ctx: Ctx, db: Db
) -> JSONResponse:
    """Rename a custom prompt, by id alone."""
    return await _put(request, who, ctx, db, prompt_id, None, body)


@router.delete("/prompt/{prompt_id}", responses=answers(PromptOut, 409))
async def delete_prompt_short(
    request: Request, prompt_id: str, who: Auth, ctx: Ctx, db: Db, force: Force = False
) -> JSONResponse:
    """Delete a custom prompt, by id alone."""
    return await _delete(request, who, ctx, db, prompt_id, None, force)


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


async def _text_request(request: Request, db: AsyncSession, prompt: Prompt) -> tuple[str, str]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError("malformed_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise v.FieldError("body", 'must be an object {"text", "voice"}')
    v.known_fields(body, ("text", "voice"), ())
    text = body.get("text")
    if text is None:
        raise ApiError("missing_field", "text: is required")
    if not isinstance(text, str):
        raise v.FieldError("text", "must be a string")
    voice = body.get("voice")
    if voice is None:
        app = await db.get(VoiceApp, prompt.app_id)
        voice = (app.config.get("voice") if app else None) or "en"
    if not isinstance(voice, str) or voice not in VOICES:
        raise v.FieldError("voice", f"must be one of {', '.join(VOICES)}")
    return text, voice


async def _set_message(
    request: Request,
    who: Principal,
    ctx: ServerContext,
    db: AsyncSession,
    prompt_id: str,
    app_id: str | None,
) -> JSONResponse:
    prompt = await _prompt(db, who, prompt_id, app_id)
    ctype = request.headers.get("content-type", "")
    store = ctx.audio_store
    if ctype.startswith("multipart/form-data"):
        file_name, data = await _upload(request)
        try:
            audio = parse_wav(data)
            key, prepared = await asyncio.to_thread(
                store.save_prompt_message, prompt_id, data, audio
            )
        except AudioFormatError as exc:
            raise audio_error(exc) from None
        source, text, voice, size = "upload", "", "", len(data)
    elif ctype.startswith("application/json"):
        text, voice = await _text_request(request, db, prompt)
        rendered = await render_text(ctx, text, voice)
        key, prepared = await asyncio.to_thread(store.save_prepared_message, prompt_id, rendered)
        file_name, source, size = "tts.wav", "tts", len(prepared.pcm) * 2 + 44
    else:
        raise ApiError(
            "unsupported_media_type",
            'send multipart/form-data with a \'file\' field, or JSON {"text", "voice"}',
        )
    old = prompt.message_key
    prompt.message_key = key
    prompt.message_source = source
    prompt.message_text = text
    prompt.message_voice = voice
    prompt.file_name = file_name[:300]
    prompt.audio_length = prepared.duration
    prompt.size_bytes = size
    prompt.message_updated_at = utcnow()
    await db.commit()
    if old:
        store.remove_prompt_message(old)
    return await _one(request, ctx, db, prompt)


async def _clear_message(
    request: Request,
    who: Principal,
    ctx: ServerContext,
    db: AsyncSession,
    prompt_id: str,
    app_id: str | None,
) -> JSONResponse:
    prompt = await _prompt(db, who, prompt_id, app_id)
    old = prompt.message_key
    prompt.message_key = ""
    prompt.message_source = prompt.message_text = prompt.message_voice = prompt.file_name = ""
    prompt.audio_length = 0.0
    prompt.size_bytes = 0
    await db.commit()
    if old:
        ctx.audio_store.remove_prompt_message(old)
    return await _one(request, ctx, db, prompt)


@router.post(
    "/prompt/{prompt_id}/message",
    responses=answers(PromptOut, 413, 415),
    openapi_extra=MESSAGE_BODY,
)
async def set_message_short(
    request: Request, prompt_id: str, who: Auth, ctx: Ctx, db: Db
) -> JSONResponse:
    """Set the prompt's message: a WAV upload (field `file`) or JSON {"text", "voice"}."""
    return await _set_message(request, who, ctx, db, prompt_id, None)


@router.post(
    "/account/{account_id}/voiceapp/{app_id}/prompt/{prompt_id}/message",
    responses=answers(PromptOut, 413, 415),
    openapi_extra=MESSAGE_BODY,
)
async def set_message(
    request: Request,
    account_id: str,
    app_id: str,
    prompt_id: str,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
) -> JSONResponse:
    """Set the prompt's message: a WAV upload (field `file`) or JSON {"text", "voice"}."""
    return await _set_message(request, who, ctx, db, prompt_id, app_id)


@router.delete("/prompt/{prompt_id}/message", responses=answers(PromptOut))
async def clear_message_short(
    request: Request, prompt_id: str, who: Auth, ctx: Ctx, db: Db
) -> JSONResponse:
    """Remove the custom message: the prompt plays its default again."""
    return await _clear_message(request, who, ctx, db, prompt_id, None)


@router.delete(
    "/account/{account_id}/voiceapp/{app_id}/prompt/{prompt_id}/message",
    responses=answers(PromptOut),
)
async def clear_message(
    request: Request,
    account_id: str,
    app_id: str,
    prompt_id: str,
    who: AccountAuth,
    ctx: Ctx,
    db: Db,
) -> JSONResponse:
    """Remove the custom message: the prompt plays its default again."""
    return await _clear_message(request, who, ctx, db, prompt_id, app_id)


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
