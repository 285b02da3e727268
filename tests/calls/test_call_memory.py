"""An ended call's memory comes back at once: nothing of it waits for a full garbage collection.

A node's full collections walk every object its calls keep (`MediaClock.own_full_collections`),
so a call whose objects refer to each other after it ended (a cycle) would hold its memory until
the next one and make it longer; refcounting frees a call without cycles the moment it ends.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from openivr.sip import clock
from tests.calls.conftest import ended, run_sipp, wait_for
from tests.conftest import RunningServer

# What a call is made of on the node, by class name.
CALL_PARTS = {"MediaCall", "CallDriver", "RtpSession", "IncomingDialog", "CallFlow", "Task"}


@pytest.fixture(autouse=True)
def nothing_frozen_meanwhile(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node freezes what lived 10 s (MediaClock.age_heap): a cycle frozen during the call
    would hide from the collection below, so the node this test starts freezes nothing."""
    monkeypatch.setattr(clock, "HEAP_AGE", 3600.0)


def test_an_ended_call_leaves_no_cycle_for_the_garbage_collector(
    phone_server: RunningServer, tmp_path: Path
) -> None:
    acc = phone_server.account()
    apps = phone_server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
    menu = next(a for a in apps.json()["response"] if a["name"] == "Main menu")
    phone_server.client.put(
        f"/account/{acc.account_id}/voiceapp/{menu['app_id']}",
        headers=acc.headers,
        json={"menu": {"digit_2": {"action": "hangup"}}},
    )
    gc.collect()
    gc.disable()  # nothing of the call may be collected before it is looked at
    try:
        run_sipp(
            phone_server,
            "menu_key_info.xml",
            tmp_path,
            menu["app_id"],
            values={"key": "2", "wait_ms": "1000", "bye_timeout": "8000"},
        )
        wait_for(
            lambda: ended(
                phone_server.client.get(f"/account/{acc.account_id}/call", headers=acc.headers)
            )
        )
        gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept to be looked at
        gc.collect()
        left = sorted({type(o).__name__ for o in gc.garbage} & CALL_PARTS)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == [], f"an ended call left cycles through {left}"
