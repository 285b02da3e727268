"""The voicemail API on SQLite and PostgreSQL: list, filters, paging, audio, read, delete."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import Account
from tests.delivery.conftest import VoicemailNode


def _url(acc: Account, app_id: str, rest: str = "") -> str:
    return f"/account/{acc.account_id}/voiceapp/{app_id}/voicemail{rest}"


def _list(node: VoicemailNode, acc: Account, app_id: str, **params: Any) -> list[dict[str, Any]]:
    r = node.client.get(_url(acc, app_id), params=params, headers=acc.headers)
    assert r.status_code == 200, r.text
    assert r.json()["resource"] == "voicemail"
    return list(r.json()["response"])


def test_list_filters_paging_read_and_delete(any_node: VoicemailNode) -> None:
    node = any_node
    acc = node.account()
    app_id = node.mailbox(acc, deliver_to="")
    ids = []
    for i in range(5):
        ids.append(node.deposit(acc.account_id, app_id, caller=f"+4670000000{i % 2}"))
        time.sleep(0.01)  # distinct creation times, so "newest first" is observable
    newest_first = list(reversed(ids))

    listed = _list(node, acc, app_id)
    assert [m["message_id"] for m in listed] == newest_first
    first = listed[0]
    assert first["read"] is False and first["caller"] == "+46700000000"
    assert first["dialed"] == "+4681234567" and first["duration"] == 1.0
    assert first["delivery_state"] == "none"  # the default mailbox delivers nowhere

    # paging: limit/offset and page
    assert [m["message_id"] for m in _list(node, acc, app_id, limit=2)] == newest_first[:2]
    assert [m["message_id"] for m in _list(node, acc, app_id, limit=2, offset=2)] == newest_first[
        2:4
    ]
    assert [m["message_id"] for m in _list(node, acc, app_id, limit=2, page=3)] == newest_first[4:]
    r = node.client.get(_url(acc, app_id), params={"limit": 2}, headers=acc.headers)
    assert r.headers["X-Total-Count"] == "5"

    # caller filter
    assert {m["message_id"] for m in _list(node, acc, app_id, caller="+46700000001")} == {
        ids[1],
        ids[3],
    }

    # time range: created at or after the third message
    third = node.message(acc, app_id, ids[2])["created"]
    after = _list(node, acc, app_id, **{"from": third})
    assert ids[0] not in {m["message_id"] for m in after}
    assert {ids[3], ids[4]} <= {m["message_id"] for m in after}
    assert _list(node, acc, app_id, to="2000-01-01T00:00:00Z") == []

    # ?fields=
    assert _list(node, acc, app_id, fields="message_id,read", limit=1) == [
        {"message_id": ids[4], "read": False}
    ]

    # mark read; the unread filter no longer shows it
    r = node.client.put(_url(acc, app_id, f"/{ids[4]}"), json={"read": True}, headers=acc.headers)
    assert r.status_code == 200, r.text
    assert r.json()["response"]["read"] is True
    assert ids[4] not in {m["message_id"] for m in _list(node, acc, app_id, unread="true")}
    assert len(_list(node, acc, app_id, unread="true")) == 4

    # delete: gone from the list, its audio too
    audio = node.client.get(_url(acc, app_id, f"/{ids[0]}/audio"), headers=acc.headers)
    assert audio.status_code == 200
    r = node.client.delete(_url(acc, app_id, f"/{ids[0]}"), headers=acc.headers)
    assert r.status_code == 200, r.text
    assert ids[0] not in {m["message_id"] for m in _list(node, acc, app_id)}
    assert node.client.get(_url(acc, app_id, f"/{ids[0]}"), headers=acc.headers).status_code == 404
    assert not list((node.settings.audio_dir / "voicemail").rglob(f"{ids[0]}.*"))
    assert list((node.settings.audio_dir / "voicemail").rglob(f"{ids[1]}.wav"))


def test_bad_queries_are_explained(any_node: VoicemailNode) -> None:
    node = any_node
    acc = node.account()
    app_id = node.mailbox(acc)
    for params, field in (
        ({"from": "yesterday"}, "from"),
        ({"limit": 0}, "limit"),
        ({"page": 0}, "page"),
        ({"from": "2024-02-01T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, "from"),
        ({"page": 2, "offset": 3}, "page"),
    ):
        r = node.client.get(_url(acc, app_id), params=params, headers=acc.headers)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["response"]["detail"].startswith(field), r.text
    msg = node.deposit(acc.account_id, app_id)
    for body in ({}, {"read": "yes"}):
        r = node.client.put(_url(acc, app_id, f"/{msg}"), json=body, headers=acc.headers)
        assert r.status_code == 400, r.text
        assert "read" in r.json()["response"]["detail"]


def test_audio_with_token_signed_url_and_ranges(any_node: VoicemailNode) -> None:
    node = any_node
    acc = node.account()
    app_id = node.mailbox(acc)
    msg = node.deposit(acc.account_id, app_id, seconds=0.5)
    with_token = node.client.get(_url(acc, app_id, f"/{msg}/audio"), headers=acc.headers)
    assert with_token.status_code == 200
    assert with_token.headers["content-type"] == "audio/wav"
    assert with_token.content[:4] == b"RIFF" and len(with_token.content) == 44 + 8000

    view = node.message(acc, app_id, msg)
    signed = node.client.get(view["audio_url"])  # no Authorization header
    assert signed.status_code == 200
    assert signed.content == with_token.content
    part = node.client.get(view["audio_url"], headers={"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.content == b"RIFF"

    tampered = view["audio_url"].replace("sig=", "sig=x")
    assert node.client.get(tampered).status_code == 403
    assert node.client.get(_url(acc, app_id, f"/{msg}/audio")).status_code == 401


def test_other_accounts_and_other_apps_are_not_found(any_node: VoicemailNode) -> None:
    node = any_node
    alice, bob = node.account(), node.account()
    alice_box, bob_box = node.mailbox(alice), node.mailbox(bob)
    bobs = node.deposit(bob.account_id, bob_box)
    # Bob's message through Alice's own mailbox path: not found.
    for method in ("GET", "PUT", "DELETE"):
        r = node.client.request(
            method,
            _url(alice, alice_box, f"/{bobs}"),
            json={"read": True} if method == "PUT" else None,
            headers=alice.headers,
        )
        assert r.status_code == 404, (method, r.text)
    assert (
        node.client.get(_url(alice, alice_box, f"/{bobs}/audio"), headers=alice.headers).status_code
        == 404
    )
    # Bob's mailbox under Alice's account: not found.
    assert node.client.get(_url(alice, bob_box), headers=alice.headers).status_code == 404
    # Bob's account with Alice's token: forbidden.
    assert node.client.get(_url(bob, bob_box), headers=alice.headers).status_code == 403
    # Not a mailbox: the IVR app has no voicemail.
    apps = node.client.get(f"/account/{alice.account_id}/voiceapp", headers=alice.headers).json()[
        "response"
    ]
    ivr = next(a["app_id"] for a in apps if a["app_type"] == "ivr")
    r = node.client.get(_url(alice, ivr), headers=alice.headers)
    assert r.status_code == 404 and r.json()["response"]["code"] == "not_found"
    # Bob's message is still there and unread.
    assert node.message(bob, bob_box, bobs)["read"] is False
