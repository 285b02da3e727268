"""Every change to an account's apps, users, prompts, teams and schedules bumps its config
revision."""

from __future__ import annotations

from typing import Any

from openivr.store.models import Account
from tests.conftest import RunningServer


def _revision(server: RunningServer, account_id: str) -> int:
    import asyncio

    from openivr.store.db import open_database

    async def read() -> int:
        async with open_database(server.settings.effective_database_url) as (_e, sessions):
            async with sessions() as db:
                account = await db.get(Account, account_id)
                assert account is not None
                return account.config_revision

    return asyncio.run(read())


def _first(c: Any, h: dict[str, str], base: str, kind: str) -> str:
    return str(c.get(f"{base}/{kind}", headers=h).json()["response"][0][f"{kind}_id"])


def test_changes_bump_the_revision(any_server: RunningServer) -> None:
    acc = any_server.account()
    c, h = any_server.client, acc.headers
    base = f"/account/{acc.account_id}"
    apps: list[dict[str, Any]] = c.get(f"{base}/voiceapp", headers=h).json()["response"]
    menu = next(a for a in apps if a["app_type"] == "ivr")
    steps = [
        lambda: c.put(f"{base}/voiceapp/{menu['app_id']}", headers=h, json={"name": "Front desk"}),
        lambda: c.post(f"{base}/voiceapp", headers=h, json={"app_type": "ivr", "name": "Sales"}),
        lambda: c.post(
            f"{base}/user",
            headers=h,
            json={"email": f"u-{acc.account_id}@example.com", "password": "secret12"},
        ),
        lambda: c.put(f"{base}/user/{acc.user_id}", headers=h, json={"user_fname": "Anna"}),
        lambda: c.post(
            f"{base}/voiceapp/{menu['app_id']}/prompt", headers=h, json={"name": "Hours"}
        ),
        lambda: c.post(f"{base}/team", headers=h, json={"name": "Sales"}),
        lambda: c.put(
            f"{base}/team/{_first(c, h, base, 'team')}", headers=h, json={"strategy": "order"}
        ),
        lambda: c.post(f"{base}/schedule", headers=h, json={"name": "Office"}),
        lambda: c.put(
            f"{base}/schedule/{_first(c, h, base, 'schedule')}",
            headers=h,
            json={"weekly": [{"days": ["mon"], "from": "09:00", "to": "17:00"}]},
        ),
        lambda: c.delete(f"{base}/team/{_first(c, h, base, 'team')}", headers=h),
        # Calls read the account too: opening hours its time zone, outgoing calls its mode.
        lambda: c.put(base, headers=h, json={"timezone": "America/New_York"}),
        lambda: c.put(base, headers=h, json={"caller_id_mode": "dialed"}),
        lambda: c.put(base, headers=h, json={"language": "sv"}),
        # Calls reuse where a number leads while the revision holds (calls/router.py).
        lambda: c.post(
            f"{base}/phonenumbersubscription",
            headers=h,
            json={"phnum": "+46812340001", "connect_to_type": "app", "connect_to": menu["app_id"]},
        ),
        lambda: c.put(
            f"{base}/phonenumbersubscription/+46812340001",
            headers=h,
            json={"connect_to_type": "user", "connect_to": acc.user_id},
        ),
        lambda: c.delete(f"{base}/phonenumbersubscription/+46812340001", headers=h),
    ]
    seen = _revision(any_server, acc.account_id)
    for step in steps:
        r = step()
        assert r.status_code < 300, r.text
        now = _revision(any_server, acc.account_id)
        assert now > seen, r.request.url
        seen = now
    # Reading, or saving what is already there, changes nothing.
    c.get(f"{base}/voiceapp", headers=h)
    assert c.put(base, headers=h, json={"timezone": "America/New_York"}).status_code == 200
    assert _revision(any_server, acc.account_id) == seen
