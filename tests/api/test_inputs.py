"""What a request may carry: text without control characters, bounded integers, JSON bodies of
bounded size and type. Refused with a 400/413/415 naming the field, alike on both databases."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from tests.conftest import Account, RunningServer

NUL = "a\u0000b"


def _app_id(server: RunningServer, acc: Account, app_type: str = "ivr") -> str:
    r = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
    return str(next(a["app_id"] for a in r.json()["response"] if a["app_type"] == app_type))


def _refused(r: Any, status: int, code: str, field: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "failed", body
    assert body["response"]["code"] == code, body
    assert body["response"]["detail"].startswith(f"{field}:"), body


def test_control_characters_in_text_fields_are_refused_naming_the_field(
    any_server: RunningServer,
) -> None:
    acc = any_server.account()
    c, h, base = any_server.client, acc.headers, f"/account/{acc.account_id}"
    app_id = _app_id(any_server, acc)
    made = c.post(f"{base}/voiceapp/{app_id}/prompt", headers=h, json={"name": "Hours"})
    prompt_id = made.json()["response"]["prompt_id"]
    json_headers = {**h, "Content-Type": "application/json"}
    for method, path, body, field in [
        ("PUT", f"{base}/voiceapp/{app_id}", {"name": NUL}, "name"),
        ("POST", f"{base}/voiceapp", {"app_type": "ivr", "name": NUL}, "name"),
        ("PUT", f"{base}/voiceapp/{app_id}/prompt/{prompt_id}", {"name": NUL}, "name"),
        ("PUT", f"{base}/user/{acc.user_id}", {"user_fname": NUL}, "user_fname"),
        ("PUT", f"{base}", {"name": "x\u001by"}, "name"),
        ("POST", "/tts/prompt/convert", {"text": NUL, "language": "en_GB"}, "text"),
        ("POST", f"/prompt/{prompt_id}/message", {"text": "hello\u0007"}, "text"),
        (
            "PUT",
            f"{base}/voiceapp/{app_id}",
            {"menu": {"digit_4": {"action": "call", "to": "phnum", "id": "+4681\u0000"}}},
            "menu.digit_4.id",
        ),
        ("PUT", f"{base}/voiceapp/{app_id}", {"name": "lone \ud800 surrogate"}, "name"),
    ]:
        # Escaped as \\u0000 (json.dumps' default), as JSON clients send it.
        r = c.request(method, path, headers=json_headers, content=json.dumps(body))
        _refused(r, 400, "invalid_field", field)
        assert "U+" in r.json()["response"]["detail"]
    # Nothing was changed by any of it, and text with lines is still text.
    r = c.put(f"{base}/voiceapp/{app_id}", headers=h, json={"name": "Main\tmenu"})
    assert r.status_code < 300 and r.json()["response"]["name"] == "Main\tmenu", r.text


def test_control_characters_in_query_parameters_and_path_ids_are_refused(
    any_server: RunningServer,
) -> None:
    acc = any_server.account()
    c, h, base = any_server.client, acc.headers, f"/account/{acc.account_id}"
    _refused(c.get(f"{base}/call?from=a%00b", headers=h), 400, "invalid_field", "from")
    _refused(c.get(f"{base}/call?to=%7F", headers=h), 400, "invalid_field", "to")
    _refused(c.get(f"{base}/voiceapp/VA%00x", headers=h), 400, "invalid_field", "app_id")
    _refused(c.get(f"{base}/user/1%01", headers=h), 400, "invalid_field", "user_id")
    _refused(
        c.delete(f"{base}/phonenumbersubscription/%2B46%0A1", headers=h),
        400,
        "invalid_field",
        "phnum",
    )
    # Without a token the answer is about the token, as for any protected request.
    r = c.get(f"{base}/call?from=a%00b")
    assert r.status_code == 401, r.text


def test_integers_out_of_range_are_refused(any_server: RunningServer) -> None:
    acc = any_server.account()
    c, h, base = any_server.client, acc.headers, f"/account/{acc.account_id}"
    r = c.get(f"{base}/call?offset=675620553465665459782156288", headers=h)
    _refused(r, 400, "invalid_field", "offset")
    box = _app_id(any_server, acc, "mailbox")
    r = c.get(f"{base}/voiceapp/{box}/voicemail?offset=675620553465665459782156288", headers=h)
    _refused(r, 400, "invalid_field", "offset")
    r = c.get(f"{base}/voiceapp/{box}/voicemail?page=99999999999999999999", headers=h)
    _refused(r, 400, "invalid_field", "page")
    huge = 675620553465665459782156288
    r = c.put(f"{base}/user/{acc.user_id}", headers=h, json={"extension": huge})
    _refused(r, 400, "invalid_field", "extension")
    r = c.put(f"{base}/voiceapp/{box}", headers=h, json={"deliver_to_details": huge})
    _refused(r, 400, "invalid_field", "deliver_to_details")
    # The largest accepted offset still answers (an empty page).
    r = c.get(f"{base}/call?offset={2**53 - 1}", headers=h)
    assert r.status_code == 200 and r.json()["response"] == [], r.text


def test_the_token_endpoint_refuses_control_characters_in_oauth_shape(
    any_server: RunningServer,
) -> None:
    r = any_server.client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": NUL, "password": "whatever-1"},
        auth=("sonetel-api", "sonetel-api"),
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request"
    assert r.json()["error_description"].startswith("username:")


def test_a_json_body_over_the_limit_is_refused_before_it_is_read(
    any_server: RunningServer,
) -> None:
    acc = any_server.account()
    path = f"/account/{acc.account_id}/voiceapp/{_app_id(any_server, acc)}"
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    r = any_server.client.put(
        path, content=big, headers={**acc.headers, "Content-Type": "application/json"}
    )
    _refused(r, 413, "too_large", "body")
    # A 50 MB body announced by its length is answered at once, before it is sent: the node
    # replies while this client has sent only the headers and the first kilobyte.
    host, port = any_server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        head = (
            f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {acc.token}\r\nContent-Length: {50 * 1024 * 1024}\r\n\r\n"
        )
        s.sendall(head.encode() + b'{"name": "' + b"x" * 1000)
        answer = s.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    # Chunked bodies without a length are cut off at the limit too.
    r = any_server.client.put(
        path,
        content=iter([big[:600_000], big[600_000:]]),
        headers={**acc.headers, "Content-Type": "application/json"},
    )
    _refused(r, 413, "too_large", "body")
    # Just under the limit passes the gate (and is judged by the route).
    r = any_server.client.put(
        path,
        content=b'{"name": "' + b"y" * 150 + b'"}',
        headers={**acc.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "content_type", ["", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_json_is_unsupported(server: RunningServer, content_type: str) -> None:
    acc = server.account()
    headers = {**acc.headers, "Content-Type": content_type} if content_type else acc.headers
    r = server.client.post(
        f"/account/{acc.account_id}/voiceapp",
        content=b'{"app_type": "ivr", "name": "Sales"}',
        headers=headers,
    )
    assert r.status_code == 415, r.text
    assert r.json()["response"]["code"] == "unsupported_media_type"
    # The hosted service's own clients send a charset: that is JSON.
    r = server.client.post(
        f"/account/{acc.account_id}/voiceapp",
        content=b'{"app_type": "ivr", "name": "Sales"}',
        headers={**acc.headers, "Content-Type": "application/json;charset=UTF-8"},
    )
    assert r.status_code < 300, r.text
