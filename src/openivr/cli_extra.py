"""Commands beyond serving and accounts: prompts build, simulate."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from openivr.settings import Settings


async def _build_prompts(settings: Settings) -> dict[str, int]:
    from sqlalchemy import select

    from openivr.apps.catalogue import STANDARD_PROMPTS, VOICES
    from openivr.apps.promptaudio import PromptSounds, warm_app
    from openivr.audio.cache import RenderCache
    from openivr.audio.texts import default_text
    from openivr.audio.tts import SpeechEngine
    from openivr.store.audiostore import AudioStore
    from openivr.store.db import open_database
    from openivr.store.models import VoiceApp

    cache = RenderCache(settings.audio_dir / "rendered", SpeechEngine())
    fixed = 0
    for voice in VOICES:
        for app_type, prompts in STANDARD_PROMPTS.items():
            for standard in prompts:
                if app_type == "ivr" and standard.key == "menu":
                    continue  # built from each menu below
                await cache.render_async(voice, default_text(voice, standard.key, app_type))
                fixed += 1
    sounds = PromptSounds(AudioStore(settings.audio_dir), cache)
    apps = 0
    async with open_database(settings.effective_database_url) as (_engine, sessions):
        async with sessions() as db:
            rows = (await db.execute(select(VoiceApp.account_id, VoiceApp.app_id))).all()
        for account_id, app_id in rows:
            await warm_app(sessions, sounds, account_id, app_id)
            apps += 1
    return {"standard_renderings": fixed, "apps": apps}


def register(
    sub: Any,
    add_store_flags: Callable[[argparse.ArgumentParser], None],
    settings_of: Callable[[argparse.Namespace], Settings],
) -> None:
    """Add the extra subcommands."""
    prompts = sub.add_parser("prompts", help="prompt audio").add_subparsers(
        dest="action", required=True
    )
    build = prompts.add_parser("build", help="render every default recording ahead of time")
    add_store_flags(build)

    def _build(args: argparse.Namespace) -> int:
        print(json.dumps(asyncio.run(_build_prompts(settings_of(args)))))
        return 0

    build.set_defaults(func=_build)
