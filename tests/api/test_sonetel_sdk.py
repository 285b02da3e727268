"""The hosted service's published Python SDK (`sonetel` on PyPI) against a real `openivr serve`,
with only its base URL changed: every operation it offers for auth, account, users, voice apps,
phone numbers, callback calls and call recordings reports success where it worked and
failure where it should fail.

The SDK answers `{"status": "unknown"}` for any 2xx but 200 and parses bodies only on 200, so
these tests are also what holds the node to HTTP 200 on every success.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sonetel
from sonetel import _constants

from openivr.audio.wavstream import WavStream
from openivr.store import ids, recordings
from openivr.store.db import open_database
from tests.calls.conftest import rtp_range, wait_for
from tests.calls.test_callbacks import MediaPeer, Trunk
from tests.conftest import free_port
from tests.node_process import Node, serving_node

EMAIL = "owner-server@example.com"  # the account serving_node creates
PASSWORD = "seed-script-pass"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A real node process with an account, and the SDK pointed at it."""
    with serving_node(tmp_path_factory.mktemp("sdk")) as running:
        patch = pytest.MonkeyPatch()
        patch.setattr(_constants, "API_URI_BASE", running.base_url)
        patch.setattr(
            _constants, "API_URI_AUTH", running.base_url + "/SonetelAuth/beta/oauth/token"
        )
        try:
            yield running
        finally:
            patch.undo()


@pytest.fixture(scope="module")
def auth(node: Node) -> sonetel.Auth:
    return sonetel.Auth(EMAIL, PASSWORD)


def succeeded(answer: Any) -> Any:
    """The payload of an SDK answer that reports success."""
    assert isinstance(answer, dict) and answer.get("status") == "success", answer
    return answer["response"]


def failed(answer: Any, code: str) -> None:
    """An SDK answer that reports the failure, with the node's error code in its message."""
    assert isinstance(answer, dict) and answer.get("status") == "failed", answer
    assert f'"code":"{code}"' in answer["message"], answer


def test_auth_creates_and_refreshes_tokens(node: Node, auth: sonetel.Auth) -> None:
    decoded = auth.get_decoded_token()
    assert (str(decoded["acc_id"]), str(decoded["user_id"])) == (node.account_id, node.user_id)
    assert auth.get_access_token() and auth.get_refresh_token()
    fresh = auth.create_token(grant_type="refresh_token")
    assert fresh["access_token"] and fresh["refresh_token"], fresh
    assert auth.get_access_token() == fresh["access_token"]
    # The used refresh token is refused the second time.
    again = auth.create_token(grant_type="refresh_token", refresh_token=fresh["refresh_token"])
    assert "access_token" in again
    reused = auth.create_token(grant_type="refresh_token", refresh_token=fresh["refresh_token"])
    assert reused["status"] == "failed" and "unauthorized" in reused["message"], reused
    # A wrong password: the SDK gets no token (it then fails on the missing access_token).
    with pytest.raises(KeyError):
        sonetel.Auth(EMAIL, "not-the-password")


def test_account(node: Node, auth: sonetel.Auth) -> None:
    account = sonetel.Account(auth.get_access_token())
    assert account.get_accountid() == node.account_id
    assert succeeded(account.get())["account_id"] == node.account_id
    changed = succeeded(account.update(name="SDK Ltd", language="sv", timezone="Europe/Stockholm"))
    assert (changed["name"], changed["language"], changed["timezone"]) == (
        "SDK Ltd",
        "sv",
        "Europe/Stockholm",
    )
    failed(account.update(timezone="Mars/Olympus_Mons"), "invalid_field")


def test_users(node: Node, auth: sonetel.Auth) -> None:
    users = sonetel.User(auth.get_access_token())
    assert succeeded(users.get())["user_id"] == node.user_id
    assert succeeded(users.get(userid=node.user_id))["email"] == EMAIL
    added = succeeded(users.add("rita@example.com", "Rita", "Regular", "rita-pass-1"))
    assert added["type"] == "regular" and added["user_fname"] == "Rita"
    listed = succeeded(users.get(all_users=True))
    assert {u["email"] for u in listed} == {EMAIL, "rita@example.com"}
    failed(users.add("rita@example.com", "Rita", "Again", "rita-pass-1"), "duplicate")
    failed(
        users.add("admin2@example.com", "A", "B", "pw-123456", user_type="boss"), "invalid_field"
    )
    assert succeeded(users.delete(added["user_id"]))["user_id"] == added["user_id"]
    failed(users.delete(added["user_id"]), "not_found")
    failed(users.get(userid="1234567890"), "not_found")


def test_phone_numbers(node: Node, auth: sonetel.Auth) -> None:
    token = auth.get_access_token()
    numbers = sonetel.PhoneNumber(token)
    assert succeeded(numbers.get()) == "No entries found"
    assert succeeded(numbers.add("+46812345670"))["phnum"] == "+46812345670"
    assert succeeded(numbers.add("46812345671"))["phnum"] == "+46812345671"  # '+' optional
    assert succeeded(numbers.get()) == ["+46812345670", "+46812345671"]
    full = succeeded(numbers.get(e164only=False))
    assert [n["connect_to_type"] for n in full] == ["", ""]
    one = succeeded(numbers.get(e164only=False, number="+46812345670"))
    assert one["phnum"] == "+46812345670"
    failed(numbers.add("+46812345670"), "duplicate")
    menu = next(a for a in succeeded(sonetel.VoiceApp(token).get()) if a["app_type"] == "ivr")
    connected = succeeded(numbers.update("+46812345670", "app", menu["app_id"]))
    assert connected["connect_to"] == {"app_type": "ivr", "app_id": menu["app_id"]}
    to_user = succeeded(numbers.update("+46812345671", "user", node.user_id))
    assert to_user["connect_to"] == node.user_id
    failed(numbers.update("+46812345671", "user", "1234567890"), "unknown_reference")
    assert succeeded(numbers.delete("+46812345671"))["phnum"] == "+46812345671"
    failed(numbers.delete("+46812345671"), "not_found")
    assert succeeded(numbers.get()) == ["+46812345670"]


def test_voice_apps(node: Node, auth: sonetel.Auth) -> None:
    token = auth.get_access_token()
    apps = succeeded(sonetel.VoiceApp(token).get())
    assert sorted(a["app_type"] for a in apps) == ["ivr", "mailbox", "sysprompt"]
    box = next(a for a in apps if a["app_type"] == "mailbox")
    # The SDK keeps the app id in its URL: a fresh object per call, as its users write it.
    assert succeeded(sonetel.VoiceApp(token).get(box["app_id"]))["name"] == "Voice Mail"
    failed(sonetel.VoiceApp(token).get("VAnothere000"), "not_found")
    # The default menu's 1 connects to the mailbox: deleting it is refused while in use.
    failed(sonetel.VoiceApp(token).delete(box["app_id"]), "in_use")
    sysprompt = next(a for a in apps if a["app_type"] == "sysprompt")
    failed(sonetel.VoiceApp(token).delete(sysprompt["app_id"]), "required")
    made = node_post(node, "/voiceapp", {"app_type": "ivr", "name": "Made for the SDK"})
    assert succeeded(sonetel.VoiceApp(token).delete(made["app_id"]))["app_id"] == made["app_id"]
    failed(sonetel.VoiceApp(token).delete(made["app_id"]), "not_found")


def node_post(node: Node, path: str, body: dict[str, Any]) -> Any:
    """Create something the SDK cannot create (it has no voice-app create)."""
    r = httpx.post(
        f"{node.base_url}/account/{node.account_id}{path}",
        json=body,
        headers={"Authorization": f"Bearer {node.token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["response"]


def test_callback(tmp_path: Path) -> None:
    """The SDK's callback on a node that places calls in a media process of its own (`--workers
    1`: the API process hands the checked callback over) through a SIPp trunk: both phones
    answer, talk, and the second hangs up."""
    trunk_port = free_port()
    first, second = MediaPeer(700.0), MediaPeer(1300.0)
    flags = (
        "--sip-port", str(free_port()), "--rtp-ports", rtp_range(), "--workers", "1",
        "--sip-trunk", f"sip:127.0.0.1:{trunk_port}",
    )  # fmt: skip
    with serving_node(tmp_path, *flags, name="callback") as running:
        patch = pytest.MonkeyPatch()
        patch.setattr(_constants, "API_URI_BASE", running.base_url)
        patch.setattr(
            _constants, "API_URI_AUTH", running.base_url + "/SonetelAuth/beta/oauth/token"
        )
        trunk = Trunk(tmp_path, trunk_port, [(first.port, "talk"), (second.port, "hang")])
        try:
            token = sonetel.Auth("owner-callback@example.com", PASSWORD).get_access_token()
            calls = sonetel.Call(token)
            answer = calls.callback("+46701000001", "+46701000002")
            assert answer["statusCode"] == 202 and answer["status"] == "success", answer
            session = answer["response"]["session_id"]
            failed(calls.callback("+46701000001", "hello"), "invalid_field")
            failed(calls.callback("+46701000001", "+46701000002", cli1="+1555"), "invalid_field")
            assert calls.callback("", "+46701000002")["status"] == "failed"  # the SDK's own check
            trunk.finish()
        finally:
            first.stop(), second.stop()
            patch.undo()

        def record() -> Any:
            rows = running.get(f"/account/{running.account_id}/call")
            return next((r for r in rows if r["call_id"] == session and r["end_time"]), None)

        call = wait_for(record, timeout=30)
    assert call["outcome"] == "connected" and call["ended_by"] == "call2", call
    assert [leg["status"] for leg in call["transfers"]] == ["answered", "answered"]
    assert call["detail"]["app_id"].startswith("PythonSonetelPackage__")


def _recording(node: Node, created: datetime, user_id: str | None = None) -> str:
    """A finished recording in the node's store (calls make them; the SDK only reads them)."""
    recording_id = ids.call_recording_id()
    key = recordings.file_key(node.account_id, recording_id)
    data_dir = node.log.parent / "data"  # serving_node's data dir, beside its log
    path = data_dir / "recordings" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = WavStream(path, 1)
    wav.append(bytes(16000))
    wav.fix_sizes()
    wav.close()
    row = {
        "recording_id": recording_id,
        "account_id": node.account_id,
        "call_id": f"sdk-{recording_id}",
        "user_id": user_id,
        "node": "sdk",
        "status": "complete",
        "failure": "",
        "codec": "PCMU",
        "channels": 1,
        "file_key": key,
        "size_bytes": path.stat().st_size,
        "seconds": 1.0,
        "created_at": created,
        "ended_at": created + timedelta(seconds=1),
    }

    async def insert() -> None:
        url = f"sqlite+aiosqlite:///{(data_dir / 'openivr.db').resolve()}"
        async with open_database(url) as (_e, sessions), sessions() as db:
            await recordings.insert_row(db, row)
            await db.commit()

    asyncio.run(insert())
    return recording_id


def test_call_recordings(node: Node, auth: sonetel.Auth) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    older = _recording(node, now - timedelta(days=2))
    newer = _recording(node, now - timedelta(hours=1), user_id=node.user_id)
    sdk = sonetel.Recording(auth.get_access_token())
    listed = succeeded(sdk.get())
    assert [r["call_recording_id"] for r in listed] == [newer, older]
    assert listed[0]["file"] == {"type": "wav", "size": 16044, "file_id": newer}
    day = "%Y%m%dT%H:%M:%SZ"
    window = succeeded(
        sdk.get(start_time=(now - timedelta(days=1)).strftime(day), end_time=now.strftime(day))
    )
    assert [r["call_recording_id"] for r in window] == [newer]
    one = succeeded(sdk.get(rec_id=newer, file_access_details=True, voice_call_details=True))
    assert one["user_id"] == node.user_id and one["voice_call_details"]["codec"] == "PCMU"
    download = httpx.get(one["file"]["file_access_details"]["url"], timeout=10)
    assert download.status_code == 200 and len(download.content) == 16044
    with_links = succeeded(sdk.get(file_access_details=True))
    assert all("url" in r["file"]["file_access_details"] for r in with_links)
    failed(sdk.get(rec_id="CRnotthere00"), "not_found")
    assert succeeded(sdk.delete(older))["call_recording_id"] == older
    failed(sdk.delete(older), "not_found")
    assert [r["call_recording_id"] for r in succeeded(sdk.get())] == [newer]
