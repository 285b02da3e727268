"""Prompts of one account: list, create, rename, delete, and each prompt's message (an uploaded
WAV or a text spoken in a voice), set or cleared.

A new message's files are written before its row commits and the files of the message it
replaced are removed only after, so a prompt never points at audio that is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.apps import validation as v
from openivr.apps.promptaudio import PromptSound, PromptSounds
from openivr.apps.prompts import schema
from openivr.apps.validation import Refusal
from openivr.audio.prepared import PreparedAudio
from openivr.audio.wav import AudioFormatError, parse_wav
from openivr.engine.vocabulary import VOICES
from openivr.store import ids
from openivr.store.models import Prompt, VoiceApp, utcnow
from openivr.store.references import release
from openivr.store.snapshot import load_snapshot
from openivr.store.voiceapps import take_record_codes

# How each refusal of an upload is answered: too big 413, not a WAV we take 415, broken 400.
_AUDIO_CODES = {
    "file_too_large": "too_large",
    "not_wav": "unsupported_media_type",
    "compressed_format": "unsupported_media_type",
}


def audio_refusal(exc: AudioFormatError) -> Refusal:
    """The refusal of an upload the audio layer could not take, naming the field `file`."""
    code = _AUDIO_CODES.get(
        exc.code,
        "unsupported_media_type" if exc.code.startswith("unsupported") else "invalid_audio",
    )
    return Refusal(code, f"file: {exc.detail}")


@dataclass(frozen=True)
class DefaultRecording:
    """What a standard prompt without a message plays: its default words in the app's voice."""

    sound: PromptSound
    voice: str


class PromptService:
    """The prompts of one account, through one database session."""

    def __init__(self, db: AsyncSession, account_id: str, sounds: PromptSounds):
        self.db = db
        self.account_id = account_id
        self.sounds = sounds

    async def app(self, app_id: str) -> VoiceApp:
        """A voice app of the account; Refusal not_found otherwise."""
        app = await self.db.get(VoiceApp, app_id)
        if app is None or app.account_id != self.account_id:
            raise Refusal("not_found", f"no voice app {app_id!r} in this account")
        return app

    async def all(self, app_id: str) -> Sequence[Prompt]:
        """The app's standard prompts, then its custom prompts, oldest first."""
        await self.app(app_id)
        return (
            await self.db.scalars(
                select(Prompt)
                .where(Prompt.app_id == app_id)
                .order_by(Prompt.prompt_type.desc(), Prompt.created_at)
            )
        ).all()

    async def one(self, prompt_id: str, app_id: str | None = None) -> Prompt:
        """A prompt of the account (of app `app_id` when given); Refusal not_found otherwise."""
        prompt = await self.db.get(Prompt, prompt_id)
        if (
            prompt is None
            or prompt.account_id != self.account_id
            or (app_id and prompt.app_id != app_id)
        ):
            raise Refusal("not_found", f"no prompt {prompt_id!r} in this account")
        return prompt

    async def create(
        self, app_id: str, body: dict[str, Any] | None, name_in_query: str | None = None
    ) -> Prompt:
        """A new custom prompt of an app, silent until it gets a message; its name from the
        body or else the query."""
        await self.app(app_id)
        if body is not None:
            v.known_fields(body, schema.WRITABLE, schema.SHOWN)
        name = (body or {}).get("name") or name_in_query
        if name is None:
            raise Refusal("missing_field", 'name: is required (JSON {"name": ...} or ?name=)')
        name = v.text("name", name)
        [code] = await take_record_codes(self.db, self.account_id, 1)
        prompt = Prompt(
            prompt_id=ids.prompt_id(),
            account_id=self.account_id,
            app_id=app_id,
            prompt_type="custom",
            key="",
            name=name,
            record_code=code,
        )
        self.db.add(prompt)
        await self.db.commit()
        return prompt

    async def rename(self, prompt: Prompt, body: dict[str, Any]) -> Prompt:
        """A custom prompt's new name (none given: unchanged); standard prompts keep theirs."""
        identity = {
            "prompt_id": prompt.prompt_id,
            "type": prompt.prompt_type,
            "key": prompt.key,
            "app_id": prompt.app_id,
            "account_id": prompt.account_id,
            "record_code": prompt.record_code,
        }
        v.known_fields(body, schema.WRITABLE, schema.SHOWN, identity)
        name = body.get("name")
        if name is not None:
            if prompt.prompt_type == "standard":
                raise Refusal("immutable_field", "name: standard prompts keep their names")
            prompt.name = v.text("name", name)
            await self.db.commit()
        return prompt

    async def remove(self, prompt: Prompt, *, force: bool) -> Prompt:
        """Delete a custom prompt and its audio; in_use while menus play it, unless force."""
        if prompt.prompt_type == "standard":
            raise Refusal(
                "required",
                "standard prompts cannot be deleted; DELETE its message to restore the default",
            )
        await release(
            self.db,
            self.account_id,
            [("prompt", prompt.prompt_id)],
            force=force,
            in_use="the prompt is still played by",
        )
        await self.db.delete(prompt)
        await self.db.commit()
        self.sounds.store.remove_prompt(prompt.prompt_id)
        return prompt

    async def record(
        self, prompt: Prompt, file_name: str, data: bytes, source: str = "upload"
    ) -> Prompt:
        """A WAV becomes the prompt's message (normalised; the original kept): uploaded, or
        recorded by phone (`source` "phone")."""
        try:
            audio = parse_wav(data)
            key, prepared = await asyncio.to_thread(
                self.sounds.store.save_prompt_message, prompt.prompt_id, data, audio
            )
        except AudioFormatError as exc:
            raise audio_refusal(exc) from None
        return await self._keep(prompt, key, prepared, source, file_name, len(data))

    async def speak(self, prompt: Prompt, body: dict[str, Any]) -> Prompt:
        """A text spoken in a voice (the app's voice when none is given) becomes the prompt's
        message."""
        v.known_fields(body, schema.SPOKEN, ())
        text, voice = body.get("text"), body.get("voice")
        if text is None:
            raise Refusal("missing_field", "text: is required")
        if not isinstance(text, str):
            raise v.FieldError("text", "must be a string")
        if voice is None:
            app = await self.db.get(VoiceApp, prompt.app_id)
            voice = (app.config.get("voice") if app else None) or "en"
        if not isinstance(voice, str) or voice not in VOICES:
            raise v.FieldError("voice", f"must be one of {', '.join(VOICES)}")
        rendered = await self.sounds.speak(text, voice)
        key, prepared = await asyncio.to_thread(
            self.sounds.store.save_prepared_message, prompt.prompt_id, rendered
        )
        size = len(prepared.pcm) * 2 + 44
        return await self._keep(prompt, key, prepared, "tts", "tts.wav", size, text, voice)

    async def _keep(
        self,
        prompt: Prompt,
        key: str,
        prepared: PreparedAudio,
        source: str,
        file_name: str,
        size: int,
        text: str = "",
        voice: str = "",
    ) -> Prompt:
        old = prompt.message_key
        prompt.message_key = key
        prompt.message_source = source
        prompt.message_text = text
        prompt.message_voice = voice
        prompt.file_name = file_name[:300]
        prompt.audio_length = prepared.duration
        prompt.size_bytes = size
        prompt.message_updated_at = utcnow()
        await self.db.commit()
        if old:
            self.sounds.store.remove_prompt_message(old)
        return prompt

    async def clear_message(self, prompt: Prompt) -> Prompt:
        """Remove the custom message: a standard prompt plays its default again."""
        old = prompt.message_key
        prompt.message_key = ""
        prompt.message_source = prompt.message_text = prompt.message_voice = prompt.file_name = ""
        prompt.audio_length = 0.0
        prompt.size_bytes = 0
        await self.db.commit()
        if old:
            self.sounds.store.remove_prompt_message(old)
        return prompt

    async def defaults(self, prompts: Sequence[Prompt]) -> dict[str, DefaultRecording]:
        """The default recordings of the standard prompts among these that have no message."""
        need = [p for p in prompts if not p.message_key and p.prompt_type == "standard"]
        if not need:
            return {}
        snapshot = await load_snapshot(self.db, need[0].account_id)
        found: dict[str, DefaultRecording] = {}
        for p in need:
            ref = snapshot.config.prompt(p.account_id, p.prompt_id)
            app = snapshot.apps.get(p.app_id)
            if ref is None or app is None:
                continue
            voice = app.config.get("voice", "en")
            sound = await self.sounds.resolve_async(snapshot, ref, voice)
            if sound is not None:
                found[p.prompt_id] = DefaultRecording(sound, voice)
        return found
