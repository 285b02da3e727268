"""The configuration a simulated call runs on: the saved account, whole, with the words of its
default recordings filled in (a copy that dropped teams or schedules would simulate a call
that rings nobody and is always open)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import update

from openivr.apps.promptaudio import PromptSounds
from openivr.apps.schedules.service import ScheduleService
from openivr.apps.simulation import with_default_texts
from openivr.apps.teams.service import TeamService
from openivr.audio.cache import RenderCache
from openivr.audio.texts import default_text
from openivr.audio.tts import SpeechEngine
from openivr.engine.config import PromptRef
from openivr.store.accounts import create_account
from openivr.store.audiostore import AudioStore
from openivr.store.db import open_database
from openivr.store.models import Team
from openivr.store.snapshot import load_snapshot


def test_the_simulated_account_keeps_teams_schedules_and_rotation(
    database_url: str, tmp_path: Path
) -> None:
    async def run() -> None:
        async with open_database(database_url) as (_engine, sessions):
            made = await create_account(sessions, "sim@example.com", "secret12")
            async with sessions() as db:
                team = await TeamService(db, made.account_id, lambda _t: {}).create(
                    {"name": "Sales", "members": [made.user_id], "strategy": "rotate"}
                )
                schedule = await ScheduleService(db, made.account_id, lambda _s: {}).create(
                    {"name": "Office", "timezone": "Europe/Stockholm"}
                )
                team_id, schedule_id = team.team_id, schedule.schedule_id
            async with sessions() as db:
                # Who answered last is written by calls, not through the service.
                await db.execute(
                    update(Team).where(Team.team_id == team_id).values(last_answered=made.user_id)
                )
                await db.commit()
            async with sessions() as db:
                snapshot = await load_snapshot(db, made.account_id)
        sounds = PromptSounds(
            AudioStore(tmp_path / "audio"), RenderCache(tmp_path / "rendered", SpeechEngine())
        )
        saved = snapshot.config
        config = with_default_texts(snapshot, sounds)
        assert config.team(made.account_id, team_id) == saved.team(made.account_id, team_id)
        assert config.schedule(made.account_id, schedule_id) is not None
        assert config.last_answered(team_id) == made.user_id
        # Every part of the saved configuration is there: the same prompts under the same keys
        # (now with their words), everything else equal.
        assert vars(config).keys() == vars(saved).keys()
        for part, value in vars(saved).items():
            copied = vars(config)[part]
            if _holds_prompts(value):
                assert {k: p.prompt_id for k, p in copied.items()} == {
                    k: p.prompt_id for k, p in value.items()
                }, part
            else:
                assert copied == value, part
        sysprompt = saved.sysprompt_app(made.account_id)
        assert sysprompt is not None
        closed = config.standard_prompt(sysprompt.app_id, "closed")
        assert closed is not None and closed.text == default_text(sysprompt.voice, "closed")

    asyncio.run(run())


def _holds_prompts(value: Any) -> bool:
    """Whether a part of the configuration is prompts by some key (with_default_texts gives
    those prompts their words)."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(p, PromptRef) for p in value.values())
    )
