"""Voicemail by e-mail: the SMTP server from --smtp-url, the message, and sending it."""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import unquote, urlsplit

import aiosmtplib

from openivr.delivery.metadata import duration_text, local_time
from openivr.store.voicemail import Voicemail


class SendError(Exception):
    """A send that did not go through; `refused` when the receiver said no outright."""

    def __init__(self, detail: str, refused: bool = False, unreachable: bool = False):
        super().__init__(detail)
        self.detail = detail
        self.refused = refused
        # The server could not be reached at all: every message to it would fail alike.
        self.unreachable = unreachable


@dataclass(frozen=True)
class SmtpServer:
    """Where voicemail mail is handed over."""

    host: str
    port: int
    username: str
    password: str
    implicit_tls: bool
    starttls: bool
    sender: str
    # Verifies the server's certificate (implicit TLS or STARTTLS); None for plain SMTP.
    tls: ssl.SSLContext | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_url(cls, url: str, starttls: bool, sender: str, ca_file: str = "") -> SmtpServer:
        """Parse smtp://user:pass@host:port or smtps://...; ValueError names the problem."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"smtp_url: scheme must be smtp:// or smtps://, not {url!r}")
        if not parts.hostname:
            raise ValueError(f"smtp_url: no host in {url!r}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"smtp_url: the port of {url!r} is not a number") from None
        implicit = parts.scheme == "smtps"
        if "@" not in sender:
            raise ValueError(f"smtp_from: {sender!r} is not an e-mail address")
        uses_tls = implicit or starttls
        if ca_file and not uses_tls:
            raise ValueError("smtp_ca_file: set, but the SMTP server is reached without TLS")
        return cls(
            host=parts.hostname,
            port=port or (465 if implicit else 25),
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            implicit_tls=implicit,
            starttls=starttls and not implicit,
            sender=sender,
            tls=_tls_context(ca_file) if uses_tls else None,
        )

    @property
    def domain(self) -> str:
        """The sender's domain, used in Message-IDs."""
        return self.sender.rsplit("@", 1)[1].strip(">") or "openivr.local"


def _tls_context(ca_file: str) -> ssl.SSLContext:
    """Certificate checks against the system's CAs, or only those in `ca_file`."""
    try:
        return ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"smtp_ca_file: cannot load {ca_file!r}: {exc}") from None


def message_id_header(delivery_id: str, domain: str) -> str:
    """The Message-ID of a delivery: the same on every retry, so duplicates are recognisable."""
    return f"<{delivery_id}@{domain}>"


def compose(
    server: SmtpServer,
    to: str,
    delivery_id: str,
    msg: Voicemail,
    wav: bytes,
    timezone: str,
    mailbox_name: str,
) -> EmailMessage:
    """The e-mail of one voicemail: a plain-text summary with the WAV attached."""
    caller = msg.caller or "an unknown caller"
    length = duration_text(msg.duration)
    mail = EmailMessage()
    mail["Subject"] = f"Voicemail from {caller} ({length})"
    mail["From"] = server.sender
    mail["To"] = to
    mail["Date"] = format_datetime(msg.created_at)
    mail["Message-ID"] = message_id_header(delivery_id, server.domain)
    mail["X-OpenIVR-Message"] = msg.message_id
    mail.set_content(
        "You have a new voicemail.\n\n"
        f"From:        {caller}\n"
        f"Number:      {msg.dialed or '-'}\n"
        f"Mailbox:     {mailbox_name}\n"
        f"Time:        {local_time(msg.created_at, timezone)}\n"
        f"Duration:    {length}\n\n"
        "The recording is attached.\n"
    )
    mail.add_attachment(
        wav, maintype="audio", subtype="wav", filename=f"voicemail-{msg.message_id}.wav"
    )
    return mail


def _send_error(server: SmtpServer, exc: Exception) -> SendError:
    """What a failed send means: refused outright, the server unreachable, or temporary."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        return SendError(f"recipient refused: {detail}", refused=all(c >= 500 for c in codes))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return SendError(f"SMTP {exc.code} {exc.message}", refused=exc.code >= 500)
    if isinstance(exc, OSError | TimeoutError):
        # Also aiosmtplib's connect, disconnect and timeout errors: all temporary.
        return SendError(f"cannot reach {server.host}:{server.port}: {exc}", unreachable=True)
    return SendError(f"SMTP: {exc}")


class SmtpSessions:
    """SMTP sessions to the relay kept open between mails (one per concurrent send), so a mail
    costs MAIL, RCPT and DATA instead of a connection, TLS, EHLO and login each time."""

    def __init__(self, server: SmtpServer, idle_seconds: float = 20.0) -> None:
        self.server = server
        self.idle_seconds = idle_seconds
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    async def send(self, mail: EmailMessage, timeout: float) -> None:
        """Hand one e-mail over; SendError says whether it was refused outright."""
        reused = self._take()
        if reused is not None:
            try:
                await reused.send_message(mail, timeout=timeout)
            except aiosmtplib.SMTPServerDisconnected:
                reused.close()  # the relay ended the idle session; a fresh one below
            except Exception as exc:
                reused.close()
                raise _send_error(self.server, exc) from None
            else:
                self._keep(reused)
                return
        client = aiosmtplib.SMTP(
            hostname=self.server.host,
            port=self.server.port,
            username=self.server.username or None,
            password=self.server.password or None,
            use_tls=self.server.implicit_tls,
            start_tls=self.server.starttls,
            tls_context=self.server.tls,
            timeout=timeout,
        )
        try:
            await client.connect()
            await client.send_message(mail)
        except Exception as exc:
            client.close()
            raise _send_error(self.server, exc) from None
        self._keep(client)

    def _take(self) -> aiosmtplib.SMTP | None:
        # Close every session idle too long or closed by the relay, then use the freshest.
        now = time.monotonic()
        fresh = []
        for client, since in self._idle:
            if client.is_connected and now - since < self.idle_seconds:
                fresh.append((client, since))
            else:
                client.close()
        self._idle = fresh
        return self._idle.pop()[0] if self._idle else None

    def _keep(self, client: aiosmtplib.SMTP) -> None:
        self._idle.append((client, time.monotonic()))

    def close(self) -> None:
        """Close the idle sessions (the node stops)."""
        while self._idle:
            self._idle.pop()[0].close()
