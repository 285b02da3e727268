"""The voice-app service without HTTP, on both databases: changes are compare-and-swap, so
writers on separate sessions never lose each other's fields, and a stale If-Match is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from openivr.apps.validation import Refusal
from openivr.apps.voiceapps.service import VoiceAppService, app_etag
from openivr.store.accounts import create_account
from openivr.store.db import open_database
from openivr.store.models import Account, VoiceApp


def _shown(app: VoiceApp) -> dict[str, Any]:
    return {"app_id": app.app_id, "app_type": app.app_type, "name": app.name, **app.config}


def test_writers_keep_each_others_fields_and_a_stale_etag_is_refused(database_url: str) -> None:
    async def run() -> None:
        async with open_database(database_url) as (_engine, sessions):
            made = await create_account(sessions, "apps@example.com", "secret12")
            async with sessions() as db:
                service = VoiceAppService(db, made.account_id, _shown)
                app = await service.create({"app_type": "ivr", "name": "Sales"})
                app_id, first_etag = app.app_id, app_etag(app)
            async with sessions() as db:
                revision = (await db.get(Account, made.account_id)).config_revision  # type: ignore[union-attr]

            async def change(body: dict[str, Any]) -> None:
                async with sessions() as db:
                    await VoiceAppService(db, made.account_id, _shown).change(app_id, body, None)

            # Many writers at once, each changing one field: every field lands.
            await asyncio.gather(
                *(change({"menu": {f"digit_{d}": {"action": "hangup"}}}) for d in range(6)),
                change({"name": "Sales desk"}),
                change({"max_retries": 5}),
            )
            async with sessions() as db:
                service = VoiceAppService(db, made.account_id, _shown)
                app = await service.one(app_id)
                assert app.name == "Sales desk" and app.config["max_retries"] == 5
                assert all(app.config["menu"][f"digit_{d}"]["action"] == "hangup" for d in range(6))
                assert app.version == 9
                account = await db.get(Account, made.account_id)
                assert account is not None and account.config_revision > revision

                with pytest.raises(Refusal) as stale:
                    await service.change(app_id, {"name": "Old view"}, first_etag)
                assert stale.value.code == "precondition_failed"
                assert (await service.change(app_id, {"name": "Fresh"}, app_etag(app))).name == (
                    "Fresh"
                )
                with pytest.raises(Refusal) as retyped:
                    await service.change(app_id, {"app_type": "mailbox"}, None)
                assert retyped.value.code == "immutable_field"

    asyncio.run(run())
