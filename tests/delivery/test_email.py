"""Voicemail by e-mail through a real SMTP server: content, retries, exactly-once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.delivery.conftest import MailServer, VoicemailNode, node_settings, run_node


def _delivered(view: dict[str, object]) -> bool:
    return view["delivery_state"] == "delivered"


def test_mail_carries_the_stored_wav(node: VoicemailNode, mail: MailServer) -> None:
    acc = node.account()
    r = node.client.put(
        f"/account/{acc.account_id}", json={"timezone": "Europe/Stockholm"}, headers=acc.headers
    )
    assert r.status_code == 200, r.text
    app_id = node.mailbox(acc, deliver_to="email", deliver_to_details="boss@example.com")
    msg_id = node.deposit(acc.account_id, app_id, seconds=42.2, caller="+46701234567")

    [mail_msg] = mail.wait_for(1)
    assert mail_msg["Subject"] == "Voicemail from +46701234567 (0:42)"
    assert mail_msg["To"] == "boss@example.com"
    assert mail_msg["X-Envelope-To"] == "boss@example.com"
    body = mail_msg.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "+46701234567" in text and "+4681234567" in text and "0:42" in text
    assert "CET" in text or "CEST" in text  # the account's timezone, not UTC
    [attachment] = list(mail_msg.iter_attachments())
    assert attachment.get_content_type() == "audio/wav"
    stored = node.client.get(
        f"/account/{acc.account_id}/voiceapp/{app_id}/voicemail/{msg_id}/audio",
        headers=acc.headers,
    )
    assert stored.status_code == 200
    assert attachment.get_content() == stored.content
    assert len(stored.content) == 44 + 2 * int(8000 * 42.2)

    view = node.wait_state(acc, app_id, msg_id, _delivered)
    [delivery] = view["delivery"]
    assert delivery["channel"] == "email"
    assert delivery["state"] == "delivered"
    assert delivery["attempts"] == 1
    assert delivery["delivered_at"]
    assert delivery["history"][0]["outcome"] == "delivered"


def test_user_delivery_goes_to_the_users_email(node: VoicemailNode, mail: MailServer) -> None:
    acc = node.account()
    app_id = node.mailbox(acc, deliver_to="user", deliver_to_details=acc.user_id)
    node.deposit(acc.account_id, app_id)
    [mail_msg] = mail.wait_for(1)
    assert mail_msg["To"] == acc.email


@pytest.mark.parametrize("answer", ["451 4.3.0 try again later", "554 5.7.1 not today", "down"])
def test_refusing_then_accepting_delivers_exactly_once(
    tmp_path: Path, mail: MailServer, answer: str
) -> None:
    if answer == "down":
        mail.stop()
    else:
        mail.handler.refuse = answer
    for node in run_node(node_settings(tmp_path, smtp_url=mail.url)):
        acc = node.account()
        app_id = node.mailbox(acc, deliver_to="email", deliver_to_details="a@example.com")
        ids = [node.deposit(acc.account_id, app_id) for _ in range(3)]
        # Wait until every message has failed at least three times.
        for msg_id in ids:
            node.wait_state(acc, app_id, msg_id, lambda v: v["delivery"][0]["attempts"] >= 3)
        view = node.message(acc, app_id, ids[0])
        [delivery] = view["delivery"]
        assert delivery["state"] in ("pending", "sending")
        expected = "cannot reach" if answer == "down" else answer.split()[0]
        assert expected in delivery["last_error"]
        assert any(expected in h["error"] for h in delivery["history"])
        if answer == "down":
            mail.start()
        else:
            mail.handler.refuse = None
        for msg_id in ids:
            node.wait_state(acc, app_id, msg_id, _delivered)
        received = mail.wait_for(3)
        # No more arrive once all are delivered.
        assert len(received) == 3
        assert len({m["Message-ID"] for m in received}) == 3
        assert sorted(m["X-OpenIVR-Message"] for m in received) == sorted(ids)


def test_permanent_refusal_ends_failed_and_stays_visible(tmp_path: Path, mail: MailServer) -> None:
    mail.handler.refuse = "550 5.1.1 no such mailbox"
    settings = node_settings(tmp_path, smtp_url=mail.url, extra={"delivery_refused_retry_for": 0.5})
    for node in run_node(settings):
        acc = node.account()
        app_id = node.mailbox(acc, deliver_to="email", deliver_to_details="gone@example.com")
        msg_id = node.deposit(acc.account_id, app_id)
        view = node.wait_state(acc, app_id, msg_id, lambda v: v["delivery_state"] == "failed")
        [delivery] = view["delivery"]
        assert delivery["state"] == "failed"
        assert "550" in delivery["last_error"]
        assert delivery["attempts"] >= 2
        assert delivery["next_attempt_at"] is None
        listed = node.client.get(
            f"/account/{acc.account_id}/voiceapp/{app_id}/voicemail", headers=acc.headers
        ).json()["response"]
        assert [m["message_id"] for m in listed] == [msg_id]
        assert not mail.handler.messages


def test_without_smtp_messages_wait_then_go_when_configured(
    tmp_path: Path, mail: MailServer
) -> None:
    first = node_settings(tmp_path)
    for node in run_node(first):
        acc = node.account()
        app_id = node.mailbox(acc, deliver_to="email", deliver_to_details="later@example.com")
        msg_id = node.deposit(acc.account_id, app_id)
        view = node.message(acc, app_id, msg_id)
        assert view["delivery"][0]["state"] == "not_configured"
        assert view["delivery_state"] == "not_configured"
    assert not mail.handler.messages
    # The same data dir, restarted with SMTP configured.
    for node in run_node(node_settings(tmp_path, smtp_url=mail.url, secret=first.secret)):
        node.wait_state(acc, app_id, msg_id, _delivered)
        [received] = mail.wait_for(1)
        assert received["To"] == "later@example.com"
