"""Nodes reuse where a number leads while its account's configuration holds: a change saved
through the API, on whichever node, reaches the next call on every node."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from openivr.calls.router import Destination, Routes
from openivr.store.db import make_engine, make_sessionmaker
from openivr.store.fresh import FreshReader
from openivr.store.snapshot import SnapshotCache
from tests.conftest import Account, RunningServer

NUMBER = "+46812349876"
CALLER = "+46701234567"


class Nodes:
    """Two nodes' routing over the server's database: one checks held answers with a fresh
    read, the other through its ORM session."""

    def __init__(self, server: RunningServer):
        self.loop = asyncio.new_event_loop()
        self.stack = AsyncExitStack()
        engine = make_engine(server.settings.effective_database_url)
        self.stack.push_async_callback(engine.dispose)
        reader = FreshReader(engine)
        self.stack.push_async_callback(reader.close)
        sessions = make_sessionmaker(engine)
        self.routes = [
            Routes(sessions, SnapshotCache(reader=reader)),
            Routes(sessions, SnapshotCache()),
        ]

    def find(self, route_key: str, caller: str = CALLER) -> list[Destination | None]:
        """Where each node sends a call to `route_key` now (asked twice: looked up, then
        reused)."""

        async def ask() -> list[Destination | None]:
            found = []
            for routes in self.routes:
                first, _ = await routes.find(route_key, caller)
                again, _ = await routes.find(route_key, caller)
                assert again == first
                found.append(first)
            return found

        return self.loop.run_until_complete(ask())

    def reused(self, route_key: str, caller: str = CALLER) -> list[bool]:
        """Whether each node answers from what it holds (the snapshot comes with it)."""

        async def ask() -> list[bool]:
            return [(await r.find(route_key, caller))[1] is not None for r in self.routes]

        return self.loop.run_until_complete(ask())

    def close(self) -> None:
        self.loop.run_until_complete(self.stack.aclose())
        self.loop.close()


@pytest.fixture
def nodes(any_server: RunningServer) -> Iterator[Nodes]:
    made = Nodes(any_server)
    try:
        yield made
    finally:
        made.close()


def _apps(server: RunningServer, acc: Account) -> dict[str, dict[str, Any]]:
    r = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
    return {a["name"]: a for a in r.json()["response"]}


def _connect(server: RunningServer, acc: Account, body: dict[str, Any]) -> None:
    url = f"/account/{acc.account_id}/phonenumbersubscription/{NUMBER}"
    r = server.client.put(url, headers=acc.headers, json=body)
    assert r.status_code == 200, r.text


def test_a_number_connected_elsewhere_leads_there_on_the_next_call(
    any_server: RunningServer, nodes: Nodes
) -> None:
    acc, other = any_server.account(), any_server.account()
    apps = _apps(any_server, acc)
    menu, box = apps["Main menu"]["app_id"], apps["Voice Mail"]["app_id"]
    r = any_server.client.post(
        f"/account/{acc.account_id}/phonenumbersubscription",
        headers=acc.headers,
        json={"phnum": NUMBER, "connect_to_type": "app", "connect_to": menu},
    )
    assert r.status_code == 200, r.text
    key = NUMBER.lstrip("+")
    assert nodes.find(key) == [Destination(acc.account_id, app_id=menu)] * 2
    assert nodes.reused(key) == [True, True]

    _connect(any_server, acc, {"connect_to_type": "app", "connect_to": box})
    assert nodes.find(key) == [Destination(acc.account_id, app_id=box)] * 2
    _connect(any_server, acc, {"connect_to_type": "user", "connect_to": acc.user_id})
    direct = Destination(acc.account_id, direct_kind="user", direct_target=acc.user_id)
    assert nodes.find(key) == [direct] * 2
    # An unrelated change of the account (a new app) leaves the answer as it was.
    any_server.client.post(
        f"/account/{acc.account_id}/voiceapp",
        headers=acc.headers,
        json={"app_type": "ivr", "name": "Sales"},
    )
    assert nodes.find(key) == [direct] * 2

    # The number leaves the account and another account takes it.
    url = f"/account/{acc.account_id}/phonenumbersubscription/{NUMBER}"
    assert any_server.client.delete(url, headers=acc.headers).status_code == 200
    assert nodes.find(key) == [None, None]
    their_menu = _apps(any_server, other)["Main menu"]["app_id"]
    r = any_server.client.post(
        f"/account/{other.account_id}/phonenumbersubscription",
        headers=other.headers,
        json={"phnum": NUMBER, "connect_to_type": "app", "connect_to": their_menu},
    )
    assert r.status_code == 200, r.text
    assert nodes.find(key) == [Destination(other.account_id, app_id=their_menu)] * 2


def test_a_deleted_app_is_not_reached_by_its_id_or_its_shortcode(
    any_server: RunningServer, nodes: Nodes
) -> None:
    acc = any_server.account()
    sales = any_server.client.post(
        f"/account/{acc.account_id}/voiceapp",
        headers=acc.headers,
        json={"app_type": "ivr", "name": "Sales"},
    ).json()["response"]
    reached = [Destination(acc.account_id, app_id=sales["app_id"])] * 2
    # A user of the account dialling its shortcode reaches it, as does anyone by its id.
    assert nodes.find(sales["shortcode"], acc.user_id) == reached
    assert nodes.find(sales["app_id"]) == reached
    assert nodes.reused(sales["shortcode"], acc.user_id) == [True, True]

    url = f"/account/{acc.account_id}/voiceapp/{sales['app_id']}?force=true"
    assert any_server.client.delete(url, headers=acc.headers).status_code == 200
    assert nodes.find(sales["shortcode"], acc.user_id) == [None, None]
    assert nodes.find(sales["app_id"]) == [None, None]
