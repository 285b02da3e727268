"""SIP over TLS (RFC 3261 §26, RFC 5630): our certificate, and the contexts that streams are
listened on and opened with.

Phones and trunks connect to our TLS port and see our certificate; phones do not present one of
their own (no client certificates are asked for: a phone proves who it is by digest, as on UDP).
Connections we open (a trunk, a user's `sip_uri` that says `;transport=tls` or `sips:`) check
the far end's certificate against the system's CAs, or the ones in `--tls-ca-file`, and its name
against the host of the URI we call; they offer our certificate to servers that ask for one.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

# The handshake must be over within this many seconds: a connection that never finishes it (a
# scanner, a stuck phone) is closed instead of holding a socket for asyncio's default 60 s.
HANDSHAKE_SECONDS = 10.0


class TlsSettingError(ValueError):
    """A TLS setting the node cannot start with; the message names the setting and the reason."""


@dataclass(frozen=True)
class TlsConfig:
    """Our certificate chain and key, and the CAs that sign the certificates of peers we call."""

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    _contexts: dict[str, ssl.SSLContext] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, cert_file: str, key_file: str, ca_file: str = "") -> TlsConfig:
        """Check that the files load (TlsSettingError names the setting and what is wrong)."""
        if bool(cert_file) != bool(key_file):
            missing = "--tls-key" if cert_file else "--tls-cert"
            raise TlsSettingError(f"{missing}: needed with {_other(missing)} (a PEM file)")
        config = cls(cert_file, key_file, ca_file)
        if cert_file:
            config.server_context()
        config.client_context()
        return config

    @property
    def has_certificate(self) -> bool:
        """Whether we have a certificate to listen with."""
        return bool(self.cert_file)

    def server_context(self) -> ssl.SSLContext:
        """The context our TLS listener answers with (our certificate; none asked of phones)."""
        context = self._contexts.get("server")
        if context is None:
            if not self.cert_file:
                raise TlsSettingError("--sip-tls-port: needs --tls-cert and --tls-key")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._load_chain(context)
            self._contexts["server"] = context
        return context

    def client_context(self) -> ssl.SSLContext:
        """The context of connections we open: the far end's certificate and name are checked."""
        context = self._contexts.get("client")
        if context is None:
            if self.ca_file and not Path(self.ca_file).is_file():
                raise TlsSettingError(f"--tls-ca-file: {self.ca_file!r} is not a file")
            try:
                context = ssl.create_default_context(cafile=self.ca_file or None)
            except (OSError, ssl.SSLError) as exc:
                raise TlsSettingError(
                    f"--tls-ca-file: cannot load {self.ca_file!r} as PEM certificates: {exc}"
                ) from None
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.cert_file:
                self._load_chain(context)  # for trunks that ask who we are
            self._contexts["client"] = context
        return context

    def _load_chain(self, context: ssl.SSLContext) -> None:
        for flag, path in (("--tls-cert", self.cert_file), ("--tls-key", self.key_file)):
            if not Path(path).is_file():
                raise TlsSettingError(f"{flag}: {path!r} is not a file")
        try:
            context.load_cert_chain(self.cert_file, self.key_file, password=_no_passphrase)
        except ssl.SSLError as exc:
            reason = str(exc.reason or exc).upper()
            if "KEY_VALUES_MISMATCH" in reason:
                raise TlsSettingError(
                    f"--tls-key: {self.key_file!r} is not the key of the certificate in "
                    f"--tls-cert {self.cert_file!r}"
                ) from None
            raise TlsSettingError(
                f"--tls-cert/--tls-key: cannot load {self.cert_file!r} and {self.key_file!r} "
                f"as a PEM certificate chain and its private key ({exc.reason or exc})"
            ) from None
        except OSError as exc:
            raise TlsSettingError(
                f"--tls-cert/--tls-key: cannot read {self.cert_file!r} or {self.key_file!r}: "
                f"{exc.strerror or exc}"
            ) from None


def _no_passphrase() -> str:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's passphrase.
    raise TlsSettingError("--tls-key: the key is encrypted; give the node an unencrypted PEM key")


def _other(flag: str) -> str:
    return "--tls-cert" if flag == "--tls-key" else "--tls-key"
