"""Tokens: grants, refresh rotation, revocation, and who may see what."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

import httpx
import jwt
import pytest

from openivr import security
from tests.conftest import RunningServer

BASIC = ("sonetel-api", "sonetel-api")


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_password_grant_gives_a_jwt_clients_can_read(server: RunningServer) -> None:
    acc = server.account()
    for path in ("/SonetelAuth/beta/oauth/token", "/oauth/token"):
        r = server.client.post(
            path,
            data={
                "grant_type": "password",
                "username": acc.email,
                "password": acc.password,
                "refresh": "yes",
            },
            auth=BASIC,
        )
        assert r.status_code == 200
        body = r.json()
        assert body["token_type"] == "bearer" and body["refresh_token"]
        # Clients decode without verifying and pass the audience, as the hosted service's do.
        claims = jwt.decode(
            body["access_token"], options={"verify_signature": False}, audience="api.sonetel.com"
        )
        assert claims["acc_id"] == acc.account_id and claims["user_id"] == acc.user_id
        for key in ("exp", "iat", "jti", "aud"):
            assert key in claims
        assert int(str(claims["exp"])) - int(str(claims["iat"])) == 24 * 3600


def test_multipart_body_and_refresh_no(server: RunningServer) -> None:
    acc = server.account()
    r = server.client.post(
        "/oauth/token",
        files={
            "grant_type": (None, "password"),
            "username": (None, acc.email),
            "password": (None, acc.password),
            "refresh": (None, "no"),
        },
        auth=BASIC,
    )
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()


def test_bad_credentials_and_requests(server: RunningServer) -> None:
    acc = server.account()
    form = {"grant_type": "password", "username": acc.email, "password": "wrong-one"}
    r = server.client.post("/oauth/token", data=form, auth=BASIC)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    r = server.client.post("/oauth/token", data={"grant_type": "password"}, auth=BASIC)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = server.client.post("/oauth/token", data={"grant_type": "magic"}, auth=BASIC)
    assert r.status_code == 400
    form["password"] = acc.password
    r = server.client.post("/oauth/token", data=form, auth=("evil-client", "x"))
    assert r.status_code == 401
    r = server.client.post("/oauth/token", json=form, auth=BASIC)
    assert r.status_code == 415


def test_refresh_tokens_rotate_and_are_single_use(server: RunningServer) -> None:
    acc = server.account()
    form = {"grant_type": "refresh_token", "refresh_token": acc.refresh_token}
    first = server.client.post("/oauth/token", data=form, auth=BASIC)
    assert first.status_code == 200
    new_refresh = first.json()["refresh_token"]
    assert new_refresh != acc.refresh_token
    again = server.client.post("/oauth/token", data=form, auth=BASIC)
    assert again.status_code == 401
    headers = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert server.client.get(f"/account/{acc.account_id}", headers=headers).status_code == 200


def test_missing_forged_expired_tokens_are_401(server: RunningServer) -> None:
    acc = server.account()
    url = f"/account/{acc.account_id}/voiceapp"
    assert server.client.get(url).status_code == 401
    assert server.client.get(url, headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401
    forged = jwt.encode(
        {
            "acc_id": acc.account_id,
            "user_id": acc.user_id,
            "aud": "api.sonetel.com",
            "exp": int(time.time()) + 60,
            "iat": int(time.time()),
            "jti": "x",
            "typ": "access",
            "gen": 0,
        },
        "a-guessed-secret-that-is-long-enough-32b",
        algorithm="HS256",
    )
    r = server.client.get(url, headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    assert r.json() == {
        "resource": "voiceapp",
        "status": "failed",
        "response": {"code": "unauthorized", "detail": "the token is not valid"},
    }
    from openivr.security import TokenSigner

    expired_signer = TokenSigner(server.settings.signing_secret(), "api.sonetel.com", -10, 10)
    expired = expired_signer.access_token(acc.account_id, acc.user_id, 0)
    r = server.client.get(url, headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "expired" in r.json()["response"]["detail"]


def test_another_accounts_data_is_never_shown(server: RunningServer) -> None:
    a, b = server.account(), server.account()
    apps_b = server.client.get(f"/account/{b.account_id}/voiceapp", headers=b.headers).json()[
        "response"
    ]
    for path in (
        f"/account/{b.account_id}",
        f"/account/{b.account_id}/voiceapp",
        f"/account/{b.account_id}/voiceapp/{apps_b[0]['app_id']}",
        f"/account/{b.account_id}/user",
    ):
        r = server.client.get(path, headers=a.headers)
        assert r.status_code in (403, 404)
        assert b.account_id not in json.dumps(r.json()["response"])
    # An app id of B under A's own path is simply not found.
    r = server.client.get(
        f"/account/{a.account_id}/voiceapp/{apps_b[0]['app_id']}", headers=a.headers
    )
    assert r.status_code == 404


def test_password_change_and_user_deletion_revoke_tokens(server: RunningServer) -> None:
    acc = server.account()
    r = server.client.post(
        f"/account/{acc.account_id}/user",
        headers=acc.headers,
        json={
            "user_fname": "Anna",
            "user_lname": "Berg",
            "email": "anna@example.com",
            "password": "anna-pass-1",
        },
    )
    assert r.status_code == 200, r.text
    anna_id = r.json()["response"]["user_id"]
    anna = server.login("anna@example.com", "anna-pass-1")
    anna_h = {"Authorization": f"Bearer {anna['access_token']}"}
    assert server.client.get(f"/account/{acc.account_id}", headers=anna_h).status_code == 200
    # Anna changes her password: her old access and refresh tokens stop working.
    r = server.client.put(
        f"/account/{acc.account_id}/user/{anna_id}",
        headers=anna_h,
        json={"password": "anna-pass-2"},
    )
    assert r.status_code == 200
    assert server.client.get(f"/account/{acc.account_id}", headers=anna_h).status_code == 401
    r = server.client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": anna["refresh_token"]},
        auth=BASIC,
    )
    assert r.status_code == 401
    fresh = server.login("anna@example.com", "anna-pass-2")
    fresh_h = {"Authorization": f"Bearer {fresh['access_token']}"}
    # Regular users do not manage users.
    r = server.client.post(
        f"/account/{acc.account_id}/user",
        headers=fresh_h,
        json={"email": "x@example.com", "password": "xxxxxxx"},
    )
    assert r.status_code == 403
    r = server.client.delete(f"/account/{acc.account_id}/user/{anna_id}", headers=acc.headers)
    assert r.status_code == 200
    assert server.client.get(f"/account/{acc.account_id}", headers=fresh_h).status_code == 401


def test_logins_wait_for_a_password_thread_while_the_node_answers_and_a_flood_is_refused(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Argon2 runs off the event loop that carries calls' audio, behind a bounded queue."""
    acc = server.account()
    work = security.PasswordWork(threads=1, queue=1)
    monkeypatch.setattr(security, "password_work", work)
    gate = threading.Event()
    # Occupy the only password thread, as a slow hash would.
    holder = threading.Thread(target=lambda: asyncio.run(work.run(gate.wait)))
    holder.start()
    answers: list[httpx.Response] = []

    def login() -> None:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            answers.append(
                client.post(
                    "/oauth/token",
                    data={"grant_type": "password", "username": acc.email, "password": "nope"},
                    auth=BASIC,
                )
            )

    queued = threading.Thread(target=login)
    try:
        for _ in range(500):
            if work.in_flight == 1:
                break
            time.sleep(0.01)
        queued.start()
        for _ in range(500):
            if work.in_flight == 2:
                break
            time.sleep(0.01)
        assert work.in_flight == 2 and not answers  # the login waits for the thread...
        # ...while the node goes on serving (its loop is not the one verifying).
        assert server.client.get("/healthz").status_code == 200
        r = server.client.get(f"/account/{acc.account_id}", headers=acc.headers)
        assert r.status_code == 200
        # One more than the queue holds is refused at once, with a hint when to come back.
        r = server.client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": acc.email, "password": acc.password},
            auth=BASIC,
        )
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "temporarily_unavailable"
        assert r.headers["retry-after"] == "1"
        assert work.refused == 1
    finally:
        gate.set()
        holder.join()
        queued.join()
    assert [a.status_code for a in answers] == [401]
    assert server.login(acc.email, acc.password)["access_token"]
