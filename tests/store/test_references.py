"""Deleting what settings point at: the referrers named, 409 unless forced, cleared when forced.

Through the store alone, on both databases (the HTTP side is in tests/api/)."""

from __future__ import annotations

import asyncio
import copy

import pytest
from sqlalchemy import select

from openivr.apps.validation import Refusal
from openivr.apps.voiceapps.schema import DEFAULTS
from openivr.store.accounts import create_account
from openivr.store.db import open_database
from openivr.store.models import PhoneNumber, Prompt, VoiceApp
from openivr.store.references import Referrer, referrers, release
from openivr.store.voiceapps import create_app, take_record_codes


async def _account_with_a_shared_prompt(url: str) -> tuple[str, str, str, str, str]:
    """An account whose menu "Sales" plays its own prompt and whose main menu plays it too,
    with a number connected to Sales: (account, main menu, sales, its prompt, the number)."""
    async with open_database(url) as (_engine, sessions):
        made = await create_account(sessions, "refs@example.com", "secret12")
        async with sessions() as db, db.begin():
            sales = await create_app(
                db, made.account_id, "ivr", "Sales", copy.deepcopy(DEFAULTS["ivr"])
            )
            prompt = Prompt(
                prompt_id="PRsharedhour",
                account_id=made.account_id,
                app_id=sales.app_id,
                prompt_type="custom",
                key="",
                name="Hours",
                record_code=(await take_record_codes(db, made.account_id, 1))[0],
            )
            db.add(prompt)
            play = {"action": "play", "to": "prompt", "id": prompt.prompt_id}
            sales.config = dict(sales.config, final_action=play)
            main = (
                await db.scalars(
                    select(VoiceApp).where(
                        VoiceApp.account_id == made.account_id, VoiceApp.name == "Main menu"
                    )
                )
            ).one()
            menu = copy.deepcopy(main.config)
            menu["menu"]["digit_2"] = play
            menu["menu"]["digit_3"] = {"action": "connect", "to": "app", "id": sales.app_id}
            main.config = menu
            db.add(
                PhoneNumber(
                    phnum="+46812340000",
                    account_id=made.account_id,
                    connect_to_type="app",
                    connect_to=sales.app_id,
                )
            )
        return made.account_id, main.app_id, sales.app_id, prompt.prompt_id, "+46812340000"


def test_referrers_are_named_by_resource_id_and_field(database_url: str) -> None:
    async def run() -> None:
        account, main, sales, prompt, number = await _account_with_a_shared_prompt(database_url)
        async with open_database(database_url) as (_engine, sessions), sessions() as db:
            played_by = await referrers(db, account, "prompt", prompt)
            assert {(r.resource, r.id, r.field) for r in played_by} == {
                ("voiceapp", main, "menu.digit_2"),
                ("voiceapp", sales, "final_action"),
            }
            assert str(Referrer("voiceapp", main, "Main menu", "menu.digit_2")) == (
                f"voiceapp {main} (Main menu) menu.digit_2"
            )
            reached_by = await referrers(db, account, "app", sales)
            assert [(r.resource, r.id) for r in reached_by] == [
                ("voiceapp", main),
                ("phonenumbersubscription", number),
            ]

    asyncio.run(run())


def test_release_refuses_naming_others_and_not_the_owner_then_force_clears(
    database_url: str,
) -> None:
    async def run() -> None:
        account, main, sales, prompt, number = await _account_with_a_shared_prompt(database_url)
        targets = [("app", sales), ("prompt", prompt)]
        async with open_database(database_url) as (_engine, sessions):
            async with sessions() as db:
                with pytest.raises(Refusal) as refused:
                    await release(
                        db, account, targets, force=False, in_use="the app is in use", owner=sales
                    )
                assert refused.value.code == "in_use"
                detail = refused.value.detail
                assert detail.startswith("the app is in use: ")
                assert f"{main} (Main menu) menu.digit_3" in detail
                assert f"{main} (Main menu) menu.digit_2" in detail
                assert number in detail
                assert "final_action" not in detail  # Sales playing its own prompt goes with it
            async with sessions() as db, db.begin():
                found = await release(
                    db, account, targets, force=True, in_use="the app is in use", owner=sales
                )
                assert len(found) == 3
            async with sessions() as db:
                main_app = await db.get(VoiceApp, main)
                assert main_app is not None
                assert main_app.config["menu"]["digit_2"]["action"] == ""
                assert main_app.config["menu"]["digit_3"]["action"] == ""
                num = await db.get(PhoneNumber, number)
                assert num is not None and num.connect_to_type == ""
                # Cleared everywhere, the owner's own too: it is deleted next.
                assert await referrers(db, account, "prompt", prompt) == []

    asyncio.run(run())
