"""The prompt service without HTTP, on both databases: a message's files are written before its
row and the replaced message's files removed after; standard prompts keep names and cannot go."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from openivr.apps.promptaudio import PromptSounds
from openivr.apps.prompts.service import PromptService
from openivr.apps.validation import FieldError, Refusal
from openivr.audio.cache import RenderCache
from openivr.audio.tts import SpeechEngine
from openivr.audio.wav import write_wav
from openivr.store.accounts import create_account
from openivr.store.audiostore import AudioStore
from openivr.store.db import open_database
from openivr.store.models import Prompt
from openivr.store.voiceapps import account_apps


def _wav(seconds: float = 1.0) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    return write_wav((np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), 8000)


def test_messages_replace_each_other_and_leave_no_files_behind(
    database_url: str, tmp_path: Path
) -> None:
    store = AudioStore(tmp_path / "audio")
    sounds = PromptSounds(store, RenderCache(tmp_path / "rendered", SpeechEngine()))

    async def run() -> None:
        async with open_database(database_url) as (_engine, sessions):
            made = await create_account(sessions, "prompts@example.com", "secret12")
            async with sessions() as db:
                service = PromptService(db, made.account_id, sounds)
                main = next(a for a in await _apps(service) if a[1] == "ivr")[0]
                prompt = await service.create(main, {"name": "Opening hours"})
                assert prompt.prompt_type == "custom" and not prompt.message_key

                await service.record(prompt, "hours.wav", _wav())
                first = prompt.message_key
                assert store.wav_path(first).exists()
                await service.speak(prompt, {"text": "We open at nine."})
                assert prompt.message_source == "tts" and prompt.message_voice == "en"
                assert store.wav_path(prompt.message_key).exists()
                assert not store.wav_path(first).exists()  # the replaced message is gone

                with pytest.raises(Refusal) as broken:
                    await service.record(prompt, "broken.wav", b"RIFF\x00\x00")
                assert broken.value.code in ("invalid_audio", "unsupported_media_type")
                assert prompt.message_source == "tts"  # the message it had stays
                with pytest.raises(FieldError, match="voice"):
                    await service.speak(prompt, {"text": "Hello", "voice": "klingon"})

                kept = prompt.message_key
                await service.clear_message(prompt)
                assert prompt.message_key == "" and not store.wav_path(kept).exists()

                standard = next(p for p in await service.all(main) if p.prompt_type == "standard")
                with pytest.raises(Refusal) as renamed:
                    await service.rename(standard, {"name": "Mine"})
                assert renamed.value.code == "immutable_field"
                with pytest.raises(Refusal) as removed:
                    await service.remove(standard, force=True)
                assert removed.value.code == "required"
                defaults = await service.defaults([standard])
                assert defaults[standard.prompt_id].sound.text  # its default words

                await service.remove(prompt, force=False)
            async with sessions() as db:
                assert await db.get(Prompt, prompt.prompt_id) is None

    asyncio.run(run())


def test_prompts_made_at_once_get_distinct_record_codes(database_url: str, tmp_path: Path) -> None:
    store = AudioStore(tmp_path / "audio")
    sounds = PromptSounds(store, RenderCache(tmp_path / "rendered", SpeechEngine()))

    async def run() -> tuple[list[int], list[int]]:
        async with open_database(database_url) as (_engine, sessions):
            made = await create_account(sessions, "codes@example.com", "secret12")
            async with sessions() as db:
                service = PromptService(db, made.account_id, sounds)
                main = next(a for a in await _apps(service) if a[1] == "ivr")[0]
                before = [p.record_code for p in await service.all(main)]

            async def one(n: int) -> int:
                # Each in its own session and transaction, as concurrent requests are.
                async with sessions() as db:
                    prompt = await PromptService(db, made.account_id, sounds).create(
                        main, {"name": f"Prompt {n}"}
                    )
                    return prompt.record_code

            return before, list(await asyncio.gather(*(one(n) for n in range(8))))

    before, codes = asyncio.run(run())
    # No code twice, none of the codes already given, none skipped.
    assert min(codes) > max(before)
    assert sorted(codes) == list(range(min(codes), min(codes) + 8))


async def _apps(service: PromptService) -> list[tuple[str, str]]:
    return [(a.app_id, a.app_type) for a in await account_apps(service.db, service.account_id)]
