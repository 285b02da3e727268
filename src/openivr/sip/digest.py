"""HTTP Digest authentication for SIP (RFC 2617 / RFC 8760, MD5): both client and server side.

SIP passwords are stored as HA1 = MD5(username:realm:password) with an "md5:" prefix, which is
all the server side of the MD5 scheme needs; the plain password is never kept. Because the realm
is part of the hash, changing the SIP domain (the realm) makes every stored HA1 useless: users
must set their SIP password again.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

HA1_PREFIX = "md5:"
NONCE_LIFETIME = 300.0

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)\s*,?')


class DigestError(ValueError):
    """A challenge or Authorization header that cannot be used; the message says why."""


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def ha1(username: str, realm: str, password: str) -> str:
    """MD5(username:realm:password) as lower-case hex."""
    return _md5(f"{username}:{realm}:{password}")


def stored_sip_password(username: str, realm: str, password: str) -> str:
    """How a SIP password is kept at rest: 'md5:' + HA1 ('' clears it)."""
    return HA1_PREFIX + ha1(username, realm, password) if password else ""


def parse_params(text: str) -> dict[str, str]:
    """`Digest a="b", c=d` → {'a': 'b', 'c': 'd'} (names lower-cased, quotes removed)."""
    scheme, _, rest = text.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestError(f"authentication scheme {scheme[:20]!r} is not Digest")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None:
            raise DigestError(f"cannot read digest parameters at {rest[pos : pos + 30]!r}")
        value = match.group(2)
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"')
        params[match.group(1).lower()] = value
        pos = match.end()
    return params


@dataclass(frozen=True)
class Challenge:
    """A WWW-Authenticate / Proxy-Authenticate challenge."""

    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    stale: bool = False

    @classmethod
    def parse(cls, text: str) -> Challenge:
        """Parse a challenge header value; raises DigestError."""
        params = parse_params(text)
        if "realm" not in params or "nonce" not in params:
            raise DigestError("digest challenge lacks realm or nonce")
        algorithm = params.get("algorithm", "MD5")
        if algorithm.upper() != "MD5":
            raise DigestError(f"digest algorithm {algorithm!r} is not supported (only MD5)")
        qop = tuple(q.strip() for q in params.get("qop", "").split(",") if q.strip())
        return cls(
            realm=params["realm"],
            nonce=params["nonce"],
            opaque=params.get("opaque"),
            algorithm=algorithm,
            qop=qop,
            stale=params.get("stale", "").lower() == "true",
        )

    def answer(self, method: str, uri: str, username: str, password: str) -> str:
        """The Authorization / Proxy-Authorization value answering this challenge."""
        secret = ha1(username, self.realm, password)
        ha2 = _md5(f"{method}:{uri}")
        parts = [
            f'username="{username}"',
            f'realm="{self.realm}"',
            f'nonce="{self.nonce}"',
            f'uri="{uri}"',
        ]
        if "auth" in self.qop:
            cnonce = secrets.token_hex(8)
            nc = "00000001"
            response = _md5(f"{secret}:{self.nonce}:{nc}:{cnonce}:auth:{ha2}")
            parts += [f'response="{response}"', "qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            parts.append(f'response="{_md5(f"{secret}:{self.nonce}:{ha2}")}"')
        parts.append("algorithm=MD5")
        if self.opaque is not None:
            parts.append(f'opaque="{self.opaque}"')
        return "Digest " + ", ".join(parts)


class NonceSource:
    """Issues and checks stateless nonces: a timestamp signed with a key.

    Nodes behind one load balancer share the key (derived from the cluster secret), so a
    REGISTER answering a challenge is accepted by whichever node it reaches.
    """

    @classmethod
    def shared(cls, secret: bytes) -> NonceSource:
        """Nonces every node with this secret issues and accepts alike."""
        return cls(hashlib.sha256(b"sip-nonce:" + secret).digest())

    def __init__(self, key: bytes | None = None, lifetime: float = NONCE_LIFETIME) -> None:
        self._key = key or secrets.token_bytes(32)
        self.lifetime = lifetime

    def issue(self) -> str:
        """A fresh nonce."""
        stamp = f"{time.time():.0f}"
        return f"{stamp}.{self._sign(stamp)}"

    def _sign(self, stamp: str) -> str:
        return hmac.new(self._key, stamp.encode(), hashlib.sha256).hexdigest()[:32]

    def check(self, nonce: str) -> str:
        """'ok', 'stale' (ours but expired) or 'bad' (not ours)."""
        stamp, _, signature = nonce.partition(".")
        if not stamp.isdigit() or not hmac.compare_digest(signature, self._sign(stamp)):
            return "bad"
        return "ok" if time.time() - int(stamp) <= self.lifetime else "stale"

    def challenge(self, realm: str, *, stale: bool = False) -> str:
        """A WWW-Authenticate value for a new challenge."""
        extra = ", stale=true" if stale else ""
        return f'Digest realm="{realm}", nonce="{self.issue()}", algorithm=MD5, qop="auth"{extra}'


@dataclass(frozen=True)
class Credentials:
    """The parsed Authorization header of a request."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    qop: str | None
    nc: str | None
    cnonce: str | None

    @classmethod
    def parse(cls, text: str) -> Credentials:
        """Parse an Authorization value; raises DigestError when a field is missing."""
        params = parse_params(text)
        missing = [n for n in ("username", "realm", "nonce", "uri", "response") if n not in params]
        if missing:
            raise DigestError(f"Authorization lacks {', '.join(missing)}")
        algorithm = params.get("algorithm", "MD5")
        if algorithm.upper() != "MD5":
            raise DigestError(f"digest algorithm {algorithm!r} is not supported (only MD5)")
        return cls(
            params["username"],
            params["realm"],
            params["nonce"],
            params["uri"],
            params["response"],
            params.get("qop"),
            params.get("nc"),
            params.get("cnonce"),
        )

    def verify(self, method: str, stored_ha1: str) -> bool:
        """Whether the response matches the stored HA1 (hex, with or without 'md5:')."""
        secret = stored_ha1.removeprefix(HA1_PREFIX).lower()
        ha2 = _md5(f"{method}:{self.uri}")
        if self.qop:
            if self.qop != "auth" or not self.nc or self.cnonce is None:
                return False
            expected = _md5(f"{secret}:{self.nonce}:{self.nc}:{self.cnonce}:auth:{ha2}")
        else:
            expected = _md5(f"{secret}:{self.nonce}:{ha2}")
        return hmac.compare_digest(expected, self.response.lower())
