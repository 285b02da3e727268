"""Commands beyond serving and accounts: prompts build, simulate."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from openivr.settings import Settings


async def _build_prompts(settings: Settings) -> dict[str, int]:
    from sqlalchemy import select

    from openivr.apps.promptaudio import PromptSounds, warm_app
    from openivr.audio.cache import RenderCache
    from openivr.audio.texts import default_text
    from openivr.audio.tts import SpeechEngine
    from openivr.engine.vocabulary import STANDARD_PROMPTS, VOICES
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

    sim = sub.add_parser(
        "simulate", help="simulate a call through a voice app and print what happens"
    )
    sim.add_argument("app_id")
    sim.add_argument("--keys", default="", help="keys pressed in order, e.g. 12#")
    sim.add_argument("--account", help="account id (default: the app's own)")
    sim.add_argument("--caller", default="+10000000000")
    sim.add_argument(
        "--at",
        help="the instant of the call, e.g. 2026-12-24T10:00:00+01:00 (default: now); "
        "opening hours are decided from it",
    )
    sim.add_argument("--json", action="store_true", help="print the transcript as JSON")
    add_store_flags(sim)

    def _simulate(args: argparse.Namespace) -> int:
        try:
            transcript = asyncio.run(
                _simulate_call(
                    settings_of(args), args.app_id, args.keys, args.account, args.caller, args.at
                )
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(transcript.to_dict(), indent=2) if args.json else transcript.render_text())
        return 0

    sim.set_defaults(func=_simulate)


async def _simulate_call(
    settings: Settings,
    app_id: str,
    keys: str,
    account_id: str | None,
    caller: str,
    at: str | None = None,
) -> Any:
    from datetime import UTC, datetime

    from openivr.apps import simulation
    from openivr.apps.promptaudio import PromptSounds
    from openivr.audio.cache import RenderCache
    from openivr.audio.tts import SpeechEngine
    from openivr.engine.hours import instant
    from openivr.store.audiostore import AudioStore
    from openivr.store.db import open_database
    from openivr.store.models import VoiceApp
    from openivr.store.snapshot import load_snapshot

    # The command is the driver here: it gives the engine the time (now, unless told).
    when = instant(at, "--at") if at else datetime.now(UTC)
    sounds = PromptSounds(
        AudioStore(settings.audio_dir),
        RenderCache(settings.audio_dir / "rendered", SpeechEngine()),
    )
    async with open_database(settings.effective_database_url) as (_engine, sessions):
        async with sessions() as db:
            app = await db.get(VoiceApp, app_id)
            if app is None or (account_id is not None and app.account_id != account_id):
                raise ValueError(
                    f"no voice app {app_id!r}" + (f" in account {account_id}" if account_id else "")
                )
            snapshot = await load_snapshot(db, app.account_id, sip_domain=settings.sip_domain)
            reach = await simulation.reachability_now(db, settings, app.account_id)
    return await asyncio.to_thread(
        simulation.run, snapshot, sounds, app_id, caller, app.shortcode, keys, reach, when
    )
