"""Call recording through the API, on SQLite and PostgreSQL: the account's setting, numbers'
and users' `record_calls`, and `/call-recording` (list, filters, one, delete, signed download,
what `?fields=` adds, admins only)."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np

from openivr.audio.wav import parse_wav
from openivr.audio.wavstream import WavStream
from openivr.security import UrlSigner
from openivr.store import ids
from openivr.store import recordings as store
from openivr.store.db import open_database
from tests.conftest import Account, RunningServer


def add_recording(
    server: RunningServer,
    acc: Account,
    *,
    created: datetime,
    user_id: str | None = None,
    seconds: float = 1.0,
) -> str:
    """A finished recording of the account: its WAV under the recordings dir and its row."""
    recording_id = ids.call_recording_id()
    key = store.file_key(acc.account_id, recording_id)
    path = server.settings.recordings_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = WavStream(path, 1)
    wav.append((np.arange(int(seconds * 8000)) % 100).astype("<i2").tobytes())
    wav.fix_sizes()
    wav.close()
    row: dict[str, Any] = {
        "recording_id": recording_id,
        "account_id": acc.account_id,
        "call_id": f"call-{recording_id}",
        "user_id": user_id,
        "node": "test",
        "status": "complete",
        "failure": "",
        "codec": "PCMA",
        "channels": 1,
        "file_key": key,
        "size_bytes": path.stat().st_size,
        "seconds": seconds,
        "created_at": created,
        "ended_at": created + timedelta(seconds=seconds),
    }

    async def insert() -> None:
        async with open_database(server.settings.effective_database_url) as (_e, sessions):
            async with sessions() as db:
                await store.insert_row(db, row)
                await db.commit()

    asyncio.run(insert())
    return recording_id


def listed(server: RunningServer, acc: Account, query: str = "") -> httpx.Response:
    return server.client.get(
        f"/call-recording?account_id={acc.account_id}{query}", headers=acc.headers
    )


def refused(r: httpx.Response, status: int, field: str = "") -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "failed" and body["resource"] == "call_recording", body
    assert field in body["response"]["detail"], body


def regular_user(server: RunningServer, acc: Account) -> dict[str, str]:
    email = f"reg-{acc.account_id}@example.com"
    r = server.client.post(
        f"/account/{acc.account_id}/user",
        headers=acc.headers,
        json={"email": email, "password": "password1", "type": "regular"},
    )
    assert r.status_code == 200, r.text
    token = server.login(email, "password1")["access_token"]
    return {"Authorization": f"Bearer {token}", "user_id": r.json()["response"]["user_id"]}


def test_the_account_says_which_calls_are_recorded(any_server: RunningServer) -> None:
    acc = any_server.account()
    url = f"/account/{acc.account_id}"
    assert (
        any_server.client.get(url, headers=acc.headers).json()["response"]["call_recording"]
        == "off"
    )
    for mode in ("all", "inbound", "outbound", "selected", "off"):
        r = any_server.client.put(url, headers=acc.headers, json={"call_recording": mode})
        assert r.status_code == 200 and r.json()["response"]["call_recording"] == mode, r.text
    for bad in ("sometimes", "", 5, True):
        r = any_server.client.put(url, headers=acc.headers, json={"call_recording": bad})
        assert r.status_code == 400 and "call_recording" in r.text, r.text
    assert (
        any_server.client.get(url, headers=acc.headers).json()["response"]["call_recording"]
        == "off"
    )
    # Only admins change it.
    regular = regular_user(any_server, acc)
    r = any_server.client.put(
        url, headers={"Authorization": regular["Authorization"]}, json={"call_recording": "all"}
    )
    assert r.status_code == 403, r.text


def test_numbers_and_users_carry_record_calls(any_server: RunningServer) -> None:
    acc = any_server.account()
    numbers = f"/account/{acc.account_id}/phonenumbersubscription"
    r = any_server.client.post(numbers, headers=acc.headers, json={"phnum": "+46812345670"})
    assert r.json()["response"]["record_calls"] == "no"
    r = any_server.client.post(
        numbers, headers=acc.headers, json={"phnum": "+46812345671", "record_calls": "yes"}
    )
    assert r.status_code == 200 and r.json()["response"]["record_calls"] == "yes", r.text
    # Only whether its calls are recorded changes; its connection stays.
    r = any_server.client.put(
        numbers + "/+46812345670", headers=acc.headers, json={"record_calls": True}
    )
    assert r.status_code == 200 and r.json()["response"]["record_calls"] == "yes", r.text
    assert r.json()["response"]["connect_to_type"] == ""
    for bad in ("maybe", 1):
        r = any_server.client.put(
            numbers + "/+46812345670", headers=acc.headers, json={"record_calls": bad}
        )
        assert r.status_code == 400 and "record_calls" in r.text, r.text

    users = f"/account/{acc.account_id}/user"
    me = any_server.client.get(f"{users}/{acc.user_id}", headers=acc.headers).json()["response"]
    assert me["record_calls"] == "no"
    r = any_server.client.put(
        f"{users}/{acc.user_id}", headers=acc.headers, json={"record_calls": "yes"}
    )
    assert r.status_code == 200 and r.json()["response"]["record_calls"] == "yes", r.text
    r = any_server.client.put(
        f"{users}/{acc.user_id}", headers=acc.headers, json={"record_calls": 1}
    )
    assert r.status_code == 400 and "record_calls" in r.text, r.text
    # A regular user may change their name, not whether their calls are recorded.
    regular = regular_user(any_server, acc)
    mine = {"Authorization": regular["Authorization"]}
    r = any_server.client.put(
        f"{users}/{regular['user_id']}", headers=mine, json={"record_calls": "yes"}
    )
    assert r.status_code == 403, r.text


def test_listing_filtering_reading_and_deleting(any_server: RunningServer) -> None:
    acc = any_server.account()
    now = datetime.now(UTC).replace(microsecond=0)
    old = add_recording(any_server, acc, created=now - timedelta(days=3))
    mine = add_recording(any_server, acc, created=now - timedelta(days=1), user_id=acc.user_id)
    new = add_recording(any_server, acc, created=now - timedelta(hours=1), seconds=2.0)
    other = any_server.account()
    theirs = add_recording(any_server, other, created=now)

    r = listed(any_server, acc)
    assert r.status_code == 200 and r.json()["resource"] == "call_recording", r.text
    rows = r.json()["response"]
    assert [x["call_recording_id"] for x in rows] == [new, mine, old]  # newest first
    first = rows[0]
    assert first["type"] == "voice_call" and first["account_id"] == acc.account_id
    assert first["call_id"] == f"call-{new}" and first["created_date"].endswith("Z")
    assert first["file"] == {"type": "wav", "size": 44 + 2 * 16000, "file_id": new}
    assert "file_access_details" not in first["file"] and "voice_call_details" not in first

    def ids_of(query: str) -> list[str]:
        answer = listed(any_server, acc, query)
        assert answer.status_code == 200, answer.text
        return [x["call_recording_id"] for x in answer.json()["response"]]

    assert ids_of(f"&user_id={acc.user_id}") == [mine]
    day = (now - timedelta(days=2)).strftime("%Y%m%dT%H:%M:%SZ")
    assert ids_of(f"&created_date_min={day}") == [new, mine]
    assert ids_of(f"&created_date_max={day}") == [old]
    assert ids_of(f"&created_date_min={day[:-1]}&type=voice_call") == [new, mine]  # Z optional
    refused(listed(any_server, acc, "&created_date_min=2026-01-01"), 400, "created_date_min")
    refused(
        listed(any_server, acc, "&created_date_max=20261301T00:00:00Z"), 400, "created_date_max"
    )
    refused(listed(any_server, acc, "&type=video_call"), 400, "type")
    # Another account's list, or its recording: not through this token.
    r = any_server.client.get(f"/call-recording?account_id={other.account_id}", headers=acc.headers)
    refused(r, 403)
    refused(any_server.client.get(f"/call-recording/{theirs}", headers=acc.headers), 404, theirs)
    refused(any_server.client.get("/call-recording/CRnothere0000", headers=acc.headers), 404)

    r = any_server.client.get(f"/call-recording/{mine}", headers=acc.headers)
    assert r.status_code == 200 and r.json()["response"]["user_id"] == acc.user_id, r.text
    # `fields` that select still select.
    r = any_server.client.get(f"/call-recording/{mine}?fields=call_id", headers=acc.headers)
    assert r.json()["response"] == {"call_id": f"call-{mine}"}

    r = any_server.client.delete(f"/call-recording/{old}", headers=acc.headers)
    assert r.status_code == 200 and r.json()["response"]["call_recording_id"] == old, r.text
    assert not (any_server.settings.recordings_dir / store.file_key(acc.account_id, old)).exists()
    refused(any_server.client.delete(f"/call-recording/{old}", headers=acc.headers), 404)
    refused(any_server.client.get(f"/call-recording/{old}", headers=acc.headers), 404)
    assert ids_of("") == [new, mine]


def test_fields_add_the_download_link_and_the_call(any_server: RunningServer) -> None:
    acc = any_server.account()
    made = add_recording(any_server, acc, created=datetime.now(UTC), seconds=1.5)
    both = "file_access_details,voice_call_details"
    r = any_server.client.get(f"/call-recording/{made}?fields={both}", headers=acc.headers)
    assert r.status_code == 200, r.text
    shown = r.json()["response"]
    assert shown["call_recording_id"] == made and shown["user_id"] == ""  # still whole
    access = shown["file"]["file_access_details"]
    assert set(access) == {"url", "issued_at", "expires_at"}
    issued = datetime.strptime(access["issued_at"], "%Y%m%dT%H:%M:%SZ")
    expires = datetime.strptime(access["expires_at"], "%Y%m%dT%H:%M:%SZ")
    assert expires - issued == timedelta(seconds=any_server.settings.audio_url_seconds)
    assert set(shown["voice_call_details"]) == {
        "from", "to", "codec", "start_time", "end_time", "call_length", "from_type",
        "from_name", "caller_id", "to_type", "to_name", "direction",
    }  # fmt: skip
    assert shown["voice_call_details"]["codec"] == "PCMA"
    assert shown["voice_call_details"]["direction"] == ""  # no call record of it (yet)
    [listed_one] = listed(any_server, acc, "&fields=file_access_details").json()["response"]
    assert "url" in listed_one["file"]["file_access_details"]

    # The link works without a token, and only as signed, only until it expires.
    got = httpx.get(access["url"], timeout=10)
    assert got.status_code == 200 and got.headers["content-type"] == "audio/wav"
    assert abs(parse_wav(got.content).duration - 1.5) < 0.01
    assert httpx.get(access["url"] + "x", timeout=10).status_code == 403
    path = access["url"].split("?")[0].removeprefix(any_server.settings.base_url)
    signer = UrlSigner(any_server.settings.signing_secret(), 60)
    stale = signer.sign(path, now=time.time() - 3600)
    assert httpx.get(any_server.base_url + stale, timeout=10).status_code == 403
    assert httpx.get(any_server.base_url + signer.sign(path), timeout=10).status_code == 200


def test_only_admins_see_recordings(any_server: RunningServer) -> None:
    acc = any_server.account()
    made = add_recording(any_server, acc, created=datetime.now(UTC))
    regular = {"Authorization": regular_user(any_server, acc)["Authorization"]}
    refused(any_server.client.get("/call-recording", headers=regular), 403)
    refused(any_server.client.get(f"/call-recording/{made}", headers=regular), 403)
    refused(any_server.client.delete(f"/call-recording/{made}", headers=regular), 403)
    assert any_server.client.get("/call-recording").status_code == 401
    # Without account_id the token's own account is meant.
    r = any_server.client.get("/call-recording", headers=acc.headers)
    assert [x["call_recording_id"] for x in r.json()["response"]] == [made]


def test_retention_deletes_old_recordings_once_across_nodes(any_server: RunningServer) -> None:
    acc = any_server.account()
    now = datetime.now(UTC)
    old = [add_recording(any_server, acc, created=now - timedelta(days=91)) for _ in range(6)]
    kept = add_recording(any_server, acc, created=now - timedelta(days=89))
    root = any_server.settings.recordings_dir
    # A file a crash left without its row, last written long ago.
    orphan = root / acc.account_id / "CRorphan00000.wav"
    orphan.write_bytes(b"RIFF")
    stamp = (now - timedelta(days=100)).timestamp()
    os.utime(orphan, (stamp, stamp))

    async def two_nodes() -> list[int]:
        url = any_server.settings.effective_database_url
        async with open_database(url) as (_a, one), open_database(url) as (_b, two):
            return list(
                await asyncio.gather(store.sweep(one, root, 90.0), store.sweep(two, root, 90.0))
            )

    gone = asyncio.run(two_nodes())
    assert sum(gone) == len(old)  # each old recording deleted by exactly one node
    assert [x["call_recording_id"] for x in listed(any_server, acc).json()["response"]] == [kept]
    left = sorted(p.name for p in (root / acc.account_id).iterdir())
    assert left == [f"{kept}.wav"]
