"""Text to speech: the voices the engine has, and text rendered to a WAV link."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from openivr.api.deps import Auth, Ctx
from openivr.api.docs import Loose, answers
from openivr.api.envelope import success
from openivr.api.errors import ApiError
from openivr.apps.validation import FieldError
from openivr.audio.prepared import PreparedAudio
from openivr.audio.tts import TtsVoice
from openivr.context import ServerContext

router = APIRouter(tags=["tts"])
_KEY = re.compile(r"^[0-9a-f]{64}$")


class VoiceOut(Loose):
    """A voice of the speech engine."""

    language: str | None = None
    language_label: str | None = None
    voice: str | None = None
    speaker: str | None = None
    gender: str | None = None
    default_variant: bool | None = None
    default_voice: bool | None = None


class ConvertIn(BaseModel):
    """Text to render, in a language and voice from GET /tts/prompt/voice."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    language: str | None = None
    voice: str | None = None


def rendered_link(ctx: ServerContext, key: str) -> tuple[str, str]:
    """(signed path, absolute URL) of a render cache entry's WAV."""
    signed = ctx.urls.sign(f"/audio/render/{key}.wav")
    return signed, ctx.settings.base_url + signed


def pick_voice(ctx: ServerContext, language: str | None, voice: str | None) -> str:
    """The app voice code for a (language, voice) request; FieldError naming what is unknown."""
    voices: list[TtsVoice] = ctx.speech.voices()
    by_code = {v.voice: v for v in voices}
    languages = {v.language for v in voices}
    if language is not None and language not in languages:
        raise FieldError(
            "language", f"unknown language {language!r}; use one of {', '.join(sorted(languages))}"
        )
    if voice:
        chosen = by_code.get(voice) or next(
            (v for v in voices if v.speaker.lower() == voice.lower()), None
        )
        if chosen is None:
            raise FieldError("voice", f"unknown voice {voice!r}; use one of {', '.join(by_code)}")
        if language is not None and chosen.language != language:
            raise FieldError("voice", f"voice {voice!r} speaks {chosen.language}, not {language}")
        return chosen.voice
    if language is None:
        raise FieldError("language", "language or voice is required")
    return next(v.voice for v in voices if v.language == language and v.default_voice)


async def render_text(ctx: ServerContext, text: Any, voice: str) -> PreparedAudio:
    """Render text in a voice through the cache; TtsError → FieldError naming the field."""
    if not isinstance(text, str):
        raise FieldError("text", "is required and must be a string")
    return await ctx.sounds.speak(text, voice)


@router.get("/tts/prompt/voice", responses=answers(list[VoiceOut]))
async def list_voices(request: Request, who: Auth, ctx: Ctx) -> JSONResponse:
    """The voices the speech engine really has; one default_voice per language."""
    return success(request, [asdict(v) for v in ctx.speech.voices()], resource="tts")


@router.post("/tts/prompt/convert", responses=answers(Loose))
async def convert(request: Request, body: ConvertIn, who: Auth, ctx: Ctx) -> JSONResponse:
    """Render text to a WAV (8 kHz telephone audio) and answer with its signed URL."""
    if body.text is None:
        raise ApiError("missing_field", "text: is required")
    voice = pick_voice(ctx, body.language, body.voice)
    audio = await render_text(ctx, body.text, voice)
    assert body.text is not None  # render_text refused anything but a string
    key = ctx.render_cache.key(voice, body.text)
    path, url = rendered_link(ctx, key)
    return success(
        request,
        {"url": url, "play_path": path, "voice": voice, "audio_length": round(audio.duration, 3)},
        resource="tts",
    )


@router.get(
    "/audio/render/{file}",
    responses={200: {"content": {"audio/wav": {}}}, 403: {}, 404: {}},
    tags=["audio"],
)
async def rendered_audio(
    file: str, ctx: Ctx, expires: str | None = None, sig: str | None = None
) -> Response:
    """A rendered text (default recording or TTS) through a signed, expiring URL."""
    if not ctx.urls.verify(f"/audio/render/{file}", expires, sig):
        raise ApiError("bad_signature", "the link's signature is wrong or has expired")
    key = file.removesuffix(".wav")
    stem = ctx.render_cache.stem(key) if _KEY.match(key) else None
    if stem is None or not stem.with_name(stem.name + ".wav").exists():
        raise ApiError("not_found", "no such rendering")
    return FileResponse(stem.with_name(stem.name + ".wav"), media_type="audio/wav")
