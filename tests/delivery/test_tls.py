"""Voicemail mail over TLS: STARTTLS with a login, implicit TLS (smtps), certificate checks."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from openivr.delivery.email import SmtpServer
from tests.conftest import free_port
from tests.delivery.conftest import MailHandler, node_settings, run_node

USER, PASSWORD = "relay-user", "relay-pass"


class TlsMailServer:
    """aiosmtpd with a certificate from a test CA; `implicit` for smtps, else STARTTLS."""

    def __init__(self, ca: trustme.CA, implicit: bool) -> None:
        self.port = free_port()
        self.handler = MailHandler()
        self.logins: list[tuple[bytes, bool]] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        options: dict[str, Any] = {"authenticator": self._authenticate}
        if implicit:
            # The whole connection is TLS, so AUTH may be offered from the start.
            options.update(ssl_context=context, auth_require_tls=False)
        else:
            # Plain SMTP is refused until the client has switched to TLS.
            options.update(tls_context=context, require_starttls=True)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **options)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, server.transport.get_extra_info("ssl_object") is not None))
        ok = data.login == USER.encode() and data.password == PASSWORD.encode()
        return AuthResult(success=ok)


@pytest.fixture
def ca(tmp_path: Path) -> Iterator[tuple[trustme.CA, Path]]:
    authority = trustme.CA()
    pem = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    yield authority, pem


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "smtps"])
def test_mail_goes_over_tls_with_the_configured_ca(
    tmp_path: Path, ca: tuple[trustme.CA, Path], implicit: bool
) -> None:
    authority, pem = ca
    mail = TlsMailServer(authority, implicit)
    mail.controller.start()
    try:
        scheme = "smtps" if implicit else "smtp"
        settings = node_settings(
            tmp_path,
            smtp_url=f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{mail.port}",
            smtp_starttls=not implicit,
            smtp_ca_file=str(pem),
        )
        for node in run_node(settings):
            acc = node.account()
            box = node.mailbox(acc, deliver_to="email", deliver_to_details="boss@example.com")
            msg = node.deposit(acc.account_id, box)
            view = node.wait_state(acc, box, msg, lambda v: v["delivery_state"] == "delivered")
            assert view["delivery"][0]["attempts"] == 1
        [received] = mail.handler.messages
        assert received["To"] == "boss@example.com"
        assert received["X-OpenIVR-Message"] == msg
        # The password was only ever sent inside TLS.
        assert mail.logins == [(USER.encode(), True)]
    finally:
        mail.controller.stop()


def test_an_untrusted_certificate_gets_no_mail(tmp_path: Path, ca: tuple[trustme.CA, Path]) -> None:
    authority, _pem = ca
    mail = TlsMailServer(authority, implicit=False)
    mail.controller.start()
    try:
        # No --smtp-ca-file: the system's CAs do not know the test CA.
        settings = node_settings(
            tmp_path,
            smtp_url=f"smtp://{USER}:{PASSWORD}@127.0.0.1:{mail.port}",
            smtp_starttls=True,
        )
        for node in run_node(settings):
            acc = node.account()
            box = node.mailbox(acc, deliver_to="email", deliver_to_details="boss@example.com")
            msg = node.deposit(acc.account_id, box)
            view = node.wait_state(acc, box, msg, lambda v: v["delivery"][0]["last_error"] != "")
            [delivery] = view["delivery"]
            assert delivery["state"] != "delivered"
            assert "certificate" in delivery["last_error"].lower()
        assert mail.handler.messages == []
        assert mail.logins == []  # the password never left
    finally:
        mail.controller.stop()


def test_a_bad_ca_file_is_named() -> None:
    with pytest.raises(ValueError, match="smtp_ca_file: cannot load"):
        SmtpServer.from_url("smtps://h", False, "a@b.c", ca_file="/nonexistent/ca.pem")
    with pytest.raises(ValueError, match="smtp_ca_file: set, but"):
        SmtpServer.from_url("smtp://h", False, "a@b.c", ca_file="/nonexistent/ca.pem")
