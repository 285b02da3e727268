"""The call log over HTTP: long lists come out whole, in order, paged and filtered (they are read
and rendered in steps so the event loop is never held long)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from openivr.api.calls import LIST_STEP
from openivr.store.db import open_database
from openivr.store.models import CallRecord
from tests.conftest import RunningServer


def _store(node: RunningServer, account_id: str, count: int) -> datetime:
    """`count` ended calls, one a minute, the newest first started at the time returned."""
    newest = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    async def write() -> None:
        async with open_database(node.settings.effective_database_url) as (_e, sessions):
            async with sessions() as db, db.begin():
                for i in range(count):
                    at = newest - timedelta(minutes=i)
                    db.add(
                        CallRecord(
                            call_id=f"call-{i}@test",
                            account_id=account_id,
                            from_number=f"+4670{i:07d}",
                            to_number="*21",
                            apps=["VA1", "VA2"] if i % 2 else ["VA1"],
                            keys="1#" if i % 3 else "",
                            outcome="hangup" if i % 4 else "voicemail",
                            detail={"menu": "Menü ✓", "n": i},
                            transfers=[{"to": "+4612345", "result": "answered"}] if i == 7 else [],
                            sip_status=200,
                            ended_by="us",
                            started_at=at,
                            answered_at=at + timedelta(seconds=1),
                            ended_at=at + timedelta(seconds=25.5),
                        )
                    )

    asyncio.run(write())
    return newest


def test_a_long_call_list_is_whole_and_newest_first(any_server: RunningServer) -> None:
    node = any_server
    acc = node.account()
    other = node.account()
    count = 2 * LIST_STEP + 37
    _store(node, acc.account_id, count)
    _store(node, other.account_id, 5)
    url = f"/account/{acc.account_id}/call"
    r = node.client.get(url + "?limit=1000", headers=acc.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert (body["resource"], body["status"]) == ("call", "success")
    calls = body["response"]
    assert [c["call_id"] for c in calls] == [f"call-{i}@test" for i in range(count)]
    seventh = calls[7]
    assert seventh == {
        "call_id": "call-7@test",
        "from": "+46700000007",
        "to": "*21",
        "account_id": acc.account_id,
        "apps": ["VA1", "VA2"],
        "keys": "1#",
        "outcome": "hangup",
        "detail": {"menu": "Menü ✓", "n": 7},
        "transfers": [{"to": "+4612345", "result": "answered"}],
        "sip_status": 200,
        "ended_by": "us",
        "node": "",
        "start_time": "20261101T11:53:00Z",
        "answer_time": "20261101T11:53:01Z",
        "end_time": "20261101T11:53:25Z",
        "duration": 25.5,
    }
    # Pages across the steps the list is read in; the default page is 100.
    page = node.client.get(url + f"?limit=150&offset={LIST_STEP - 20}", headers=acc.headers)
    assert [c["call_id"] for c in page.json()["response"]] == [
        f"call-{i}@test" for i in range(LIST_STEP - 20, LIST_STEP + 130)
    ]
    assert len(node.client.get(url, headers=acc.headers).json()["response"]) == 100
    # ?fields= picks fields of every record; filters still apply.
    picked = node.client.get(
        url + "?limit=1000&outcome=voicemail&fields=call_id,outcome", headers=acc.headers
    ).json()["response"]
    assert picked == [
        {"call_id": f"call-{i}@test", "outcome": "voicemail"} for i in range(0, count, 4)
    ]
    # Past the end: an empty list, not an error.
    empty = node.client.get(url + f"?offset={count}", headers=acc.headers)
    assert empty.status_code == 200 and empty.json()["response"] == []
