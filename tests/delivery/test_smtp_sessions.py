"""Voicemail mail reuses its SMTP session to the relay, and survives the relay closing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.conftest import free_port
from tests.delivery.conftest import MailHandler, MailServer, node_settings, run_node


class CountingHandler(MailHandler):
    """Also counts the sessions opened to it (one EHLO each)."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions = 0

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        self.sessions += 1
        session.host_name = hostname  # this hook takes over that part of EHLO in aiosmtpd
        return responses


def _delivered(view: dict[str, Any]) -> bool:
    return bool(view["delivery_state"] == "delivered")


def test_mails_share_one_session_and_a_closed_one_is_replaced(tmp_path: Path) -> None:
    handler = CountingHandler()
    mail = MailServer(free_port(), handler=handler)
    mail.start()
    try:
        for node in run_node(node_settings(tmp_path, smtp_url=mail.url)):
            acc = node.account()
            box = node.mailbox(acc, deliver_to="email", deliver_to_details="boss@example.com")
            for _ in range(3):
                msg = node.deposit(acc.account_id, box)
                node.wait_state(acc, box, msg, _delivered)
            assert len(handler.messages) == 3
            assert handler.sessions == 1  # one connection, EHLO and login for all three

            # The relay restarts: the session the node kept is gone. The next mail still goes
            # out in its first attempt, once.
            mail.stop()
            mail.start()
            msg = node.deposit(acc.account_id, box)
            view = node.wait_state(acc, box, msg, _delivered)
            assert view["delivery"][0]["attempts"] == 1
            assert [m["X-OpenIVR-Message"] for m in handler.messages].count(msg) == 1
            assert handler.sessions == 2
    finally:
        mail.stop()
