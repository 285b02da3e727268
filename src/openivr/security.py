"""Passwords, access tokens and signed audio URLs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# Argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): tens of milliseconds
# per login instead of half a second, still memory-hard against guessing.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    """An Argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether a password matches its stored hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class PasswordWorkBusy(Exception):
    """More password checks are waiting than the queue holds: answer 503, retry later."""


class PasswordWork:
    """Argon2id hashing and verification off the event loop.

    One Argon2id run is ~37 ms of CPU; on the loop that paces every call's RTP, each login
    froze every call's audio that long, and a client looping on the token endpoint made every
    call stutter. Here they run in a few threads (argon2-cffi releases the GIL, so the loop
    keeps running) at a lower CPU priority (nice +10 on Linux, so on a busy core the media
    thread is scheduled first), behind a bounded queue: a flood of logins waits in it, and
    beyond it is refused at once with `PasswordWorkBusy` instead of piling up without end.
    """

    def __init__(self, threads: int | None = None, queue: int = 64, nice: int = 10) -> None:
        self.threads = threads or max(1, min(2, os.cpu_count() or 1))
        self.queue = queue
        self.nice = nice
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        # Jobs admitted (running or queued) and refused; plain counters for logs and /metrics.
        self.in_flight = 0
        self.refused = 0

    def _lower_priority(self) -> None:
        # Linux applies setpriority(PRIO_PROCESS, tid) to one thread; elsewhere it would
        # renice the whole process, loop included, so only Linux does it.
        if sys.platform == "linux" and self.nice:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
            except OSError as exc:  # a sandbox may forbid it: still off the loop
                log.debug("password threads keep their priority: %s", exc)

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run fn(*args) in a password thread; PasswordWorkBusy when the queue is full."""
        with self._lock:
            if self.in_flight >= self.threads + self.queue:
                self.refused += 1
                raise PasswordWorkBusy(f"{self.in_flight} password checks are already waiting")
            self.in_flight += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.threads, "openivr-password", initializer=self._lower_priority
                )
            pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        finally:
            with self._lock:
                self.in_flight -= 1


password_work = PasswordWork()


async def hash_password_off_loop(password: str) -> str:
    """hash_password in a password thread; raises PasswordWorkBusy when the queue is full."""
    return await password_work.run(hash_password, password)


_dummy_hash: str | None = None
_dummy_lock = threading.Lock()


def _unknown_user_hash() -> str:
    # An unknown user's password is checked against a hash made like every real one, so a
    # login for a name nobody has takes as long as one for a real user (no timing tell).
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = hash_password(secrets.token_urlsafe(24))
        return _dummy_hash


def _verify_or_waste(password_hash: str | None, password: str) -> bool:
    if password_hash is None:
        verify_password(_unknown_user_hash(), password)
        return False
    return verify_password(password_hash, password)


async def verify_password_off_loop(password_hash: str | None, password: str) -> bool:
    """verify_password in a password thread; raises PasswordWorkBusy when the queue is full.
    Without a hash (an unknown user) the same work is done against a stand-in and False comes
    back, taking as long as a real check."""
    return await password_work.run(_verify_or_waste, password_hash, password)


async def prepare_unknown_user_hash() -> None:
    """Make the stand-in hash ahead of the first login for an unknown name (else that one
    login would take a hash longer than any other)."""
    await password_work.run(_unknown_user_hash)


class TokenError(Exception):
    """A token that is missing, malformed, forged or expired."""


@dataclass(frozen=True)
class AccessClaims:
    """What an access token says about its bearer."""

    account_id: str
    user_id: str
    generation: int
    jti: str


class TokenSigner:
    """Issues and checks the JWTs of the token endpoint."""

    def __init__(self, secret: bytes, audience: str, access_seconds: int, refresh_seconds: int):
        self._key = hashlib.sha256(b"jwt:" + secret).digest()
        self.audience = audience
        self.access_seconds = access_seconds
        self.refresh_seconds = refresh_seconds

    def _encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="HS256")

    def access_token(self, account_id: str, user_id: str, generation: int) -> str:
        """A signed access token carrying acc_id, user_id, aud, exp, iat and jti."""
        now = int(time.time())
        return self._encode(
            {
                "acc_id": account_id,
                "user_id": user_id,
                "aud": self.audience,
                "iat": now,
                "exp": now + self.access_seconds,
                "jti": secrets.token_hex(16),
                "gen": generation,
                "typ": "access",
            }
        )

    def refresh_token(self, account_id: str, user_id: str, generation: int) -> tuple[str, str, int]:
        """A signed refresh token, its jti and its expiry (epoch seconds)."""
        now = int(time.time())
        jti = secrets.token_hex(16)
        exp = now + self.refresh_seconds
        token = self._encode(
            {
                "acc_id": account_id,
                "user_id": user_id,
                "aud": self.audience,
                "iat": now,
                "exp": exp,
                "jti": jti,
                "gen": generation,
                "typ": "refresh",
            }
        )
        return token, jti, exp

    def decode(self, token: str, expected_type: str) -> AccessClaims:
        """Verify signature, audience, expiry and type; raise TokenError otherwise."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=self.audience,
                options={"require": ["exp", "iat", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("the token has expired") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("the token is not valid") from exc
        if claims.get("typ") != expected_type:
            raise TokenError(f"not an {expected_type} token")
        try:
            return AccessClaims(
                account_id=str(claims["acc_id"]),
                user_id=str(claims["user_id"]),
                generation=int(claims.get("gen", 0)),
                jti=str(claims["jti"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TokenError("the token lacks its claims") from exc


class UrlSigner:
    """HMAC signatures for audio URLs that browsers and curl fetch without a token."""

    def __init__(self, secret: bytes, lifetime_seconds: int):
        self._key = hashlib.sha256(b"url:" + secret).digest()
        self.lifetime_seconds = lifetime_seconds

    def _mac(self, path: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:20]).decode().rstrip("=")

    def sign(self, path: str, now: float | None = None) -> str:
        """`path?expires=..&sig=..` valid for the configured lifetime."""
        expires = int((now if now is not None else time.time()) + self.lifetime_seconds)
        return f"{path}?expires={expires}&sig={self._mac(path, expires)}"

    def verify(self, path: str, expires: str | None, sig: str | None) -> bool:
        """Whether a signature is genuine and not expired."""
        if not expires or not sig:
            return False
        try:
            exp = int(expires)
        except ValueError:
            return False
        if exp < time.time():
            return False
        # Bytes: compare_digest refuses str with non-ASCII characters.
        return hmac.compare_digest(self._mac(path, exp).encode(), sig.encode())
