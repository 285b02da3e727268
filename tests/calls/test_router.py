"""Who reaches the recorder (*22): only the phone that registered as a user, from where it
registered; everyone else gets what a wrong number gets (no destination: 404)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from openivr.calls.router import Destination, Sender, resolve
from openivr.guard.addresses import Networks
from openivr.store.accounts import create_account
from openivr.store.db import open_database
from openivr.store.registrations import save_registration

PHONE = ("127.0.0.1", 5099)


def test_only_a_registered_phone_of_a_user_reaches_the_recorder(database_url: str) -> None:
    async def run() -> dict[str, Destination | None]:
        async with open_database(database_url) as (_engine, sessions):
            made = await create_account(sessions, "rec@example.com", "secret12")
            other = await create_account(sessions, "other@example.com", "secret12")
            async with sessions() as db:
                for user, port, expires in (
                    (made.user_id, PHONE[1], timedelta(minutes=10)),
                    (other.user_id, 5100, -timedelta(minutes=1)),  # expired
                ):
                    await save_registration(
                        db,
                        user_id=user,
                        contact=f"sip:{user}@127.0.0.1:{port}",
                        source=f"127.0.0.1:{port}",
                        call_id="reg",
                        cseq=1,
                        user_agent="test",
                        expires_at=datetime.now(UTC) + expires,
                    )
                await db.commit()

            async def ask(caller: str, sender: Sender, trusted: str = "") -> Destination | None:
                networks = Networks.parse([trusted]) if trusted else None
                return await resolve(sessions, "*22", caller, sender, networks)

            return {
                "registered": await ask(made.user_id, Sender(PHONE)),
                "other port": await ask(made.user_id, Sender((PHONE[0], 5098))),
                "other transport": await ask(made.user_id, Sender(PHONE, "TCP")),
                "outside caller": await ask("+46701234567", Sender(PHONE)),
                "expired": await ask(other.user_id, Sender(("127.0.0.1", 5100))),
                "through a trusted proxy": await ask(made.user_id, Sender(PHONE), "127.0.0.1"),
                "account": Destination(made.account_id, recorder_user=made.user_id),
            }

    found = asyncio.run(run())
    assert found.pop("registered") == found.pop("account")
    assert found == dict.fromkeys(found, None)
