"""Voicemail webhooks: signed JSON POSTs, retried until the receiver accepts."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from openivr.delivery.email import SendError
from openivr.delivery.webhook import (
    SIGNATURE_HEADER,
    PinnedTarget,
    pinned_target,
    post,
    verify,
    webhook_key,
)
from tests.delivery.conftest import VoicemailNode, WebhookReceiver, node_settings, run_node


def test_webhook_is_signed_and_retried_until_accepted(
    node: VoicemailNode, webhook: WebhookReceiver
) -> None:
    webhook.fail_with = [500, 503, 429]
    acc = node.account()
    app_id = node.mailbox(acc, deliver_to="", webhook_url=webhook.url)
    msg_id = node.deposit(acc.account_id, app_id, caller="+15551234567")
    view = node.wait_state(acc, app_id, msg_id, lambda v: v["delivery_state"] == "delivered")
    [delivery] = view["delivery"]
    assert delivery["channel"] == "webhook" and delivery["attempts"] == 4
    assert "HTTP 500" in delivery["history"][0]["error"]

    [(headers, body)] = webhook.delivered()
    key = webhook_key(node.settings.secret.encode())
    assert verify(key, body, headers[SIGNATURE_HEADER])
    assert not verify(key, body + b" ", headers[SIGNATURE_HEADER])
    assert not verify(webhook_key(b"another secret"), body, headers[SIGNATURE_HEADER])
    event = json.loads(body)
    assert event["event"] == "voicemail.new"
    message = event["message"]
    assert message["message_id"] == msg_id and message["caller"] == "+15551234567"
    # The signed audio URL plays without a token.
    audio = httpx.get(message["audio_url"])
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    # Every try carried the same delivery id, so a receiver can drop repeats.
    ids = {h["X-OpenIVR-Delivery"] for h, _b, _s in webhook.requests}
    assert ids == {delivery["delivery_id"]}


def test_webhook_refused_with_4xx_ends_failed(tmp_path: Path, webhook: WebhookReceiver) -> None:
    webhook.fail_with = [410] * 1000
    settings = node_settings(tmp_path, extra={"delivery_refused_retry_for": 0.3})
    for node in run_node(settings):
        acc = node.account()
        app_id = node.mailbox(acc, deliver_to="", webhook_url=webhook.url)
        msg_id = node.deposit(acc.account_id, app_id)
        view = node.wait_state(acc, app_id, msg_id, lambda v: v["delivery_state"] == "failed")
        assert "HTTP 410" in view["delivery"][0]["last_error"]


def test_by_default_a_webhook_may_not_reach_the_node_or_its_network(tmp_path: Path) -> None:
    settings = node_settings(tmp_path, allow_private_webhooks=False)
    for node in run_node(settings):
        acc = node.account()
        app_id = node.mailbox(acc, deliver_to="")
        url = f"/account/{acc.account_id}/voiceapp/{app_id}"
        for target in (
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/hook",
            "https://192.168.0.10/hook",
            "http://[::ffff:127.0.0.1]/hook",
            f"http://127.0.0.1:{node.settings.http_port}/healthz",
        ):
            r = node.client.put(url, headers=acc.headers, json={"webhook_url": target})
            assert r.status_code == 400, (target, r.text)
            detail = r.json()["response"]["detail"]
            assert detail.startswith("webhook_url:") and "allow-private-webhooks" in detail
        # A public address is taken (nothing is sent until a message arrives).
        r = node.client.put(
            url, headers=acc.headers, json={"webhook_url": "https://93.184.216.34/h"}
        )
        assert r.status_code == 200, r.text


def test_a_private_webhook_saved_earlier_is_not_posted_to(
    tmp_path: Path, webhook: WebhookReceiver
) -> None:
    # Saved on a node that allowed it; the node that delivers does not.
    allowed = node_settings(tmp_path, extra={"delivery_refused_retry_for": 0.3})
    for node in run_node(allowed):
        acc = node.account()
        app_id = node.mailbox(acc, deliver_to="", webhook_url=webhook.url)
    strict = node_settings(
        tmp_path, allow_private_webhooks=False, extra={"delivery_refused_retry_for": 0.3}
    )
    strict = replace(strict, secret=allowed.secret)
    for node in run_node(strict):
        node.accounts.append(acc)
        msg_id = node.deposit(acc.account_id, app_id)
        view = node.wait_state(acc, app_id, msg_id, lambda v: v["delivery_state"] == "failed")
        assert "loopback" in view["delivery"][0]["last_error"]
    assert webhook.requests == []


def test_a_webhook_is_posted_to_the_address_that_was_checked(webhook: WebhookReceiver) -> None:
    # The name below never resolves: the POST can only arrive if it goes to the checked
    # address without a second lookup (a second lookup is what DNS rebinding exploits).
    port = urlsplit(webhook.url).port
    target = PinnedTarget(f"http://hook.invalid:{port}/hook", "127.0.0.1")

    async def deliver() -> None:
        async with httpx.AsyncClient() as client:
            await post(client, target, b"k" * 32, "D1", {"event": "voicemail.new"})

    asyncio.run(deliver())
    [(headers, body)] = webhook.delivered()
    assert headers["Host"] == f"hook.invalid:{port}"
    assert json.loads(body) == {"event": "voicemail.new"}


def test_the_address_a_webhook_is_pinned_to_is_checked_first() -> None:
    async def pin(url: str, allow_private: bool) -> PinnedTarget:
        return await pinned_target(url, allow_private)

    with pytest.raises(SendError) as refused:
        asyncio.run(pin("http://localhost:9/hook", False))
    assert refused.value.refused and "loopback" in str(refused.value)
    with pytest.raises(SendError) as unresolved:
        asyncio.run(pin("http://hook.invalid/hook", False))
    assert not unresolved.value.refused and "resolve" in str(unresolved.value)
    pinned = asyncio.run(pin("http://localhost:9/hook", True))
    assert pinned.address in ("127.0.0.1", "::1")
