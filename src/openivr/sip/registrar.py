"""The SIP registrar (RFC 3261 §10): users register their phones so transfers can ring them.

A phone registers as `sip:<user_id>@<sip_domain>` with digest authentication:
realm = the server's SIP domain, username = the user's user_id (digits, unique across all
accounts), password = the user's SIP password (stored as HA1, see digest.py). Bindings live
in the database (store/registrations.py) so every node can ring every phone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.guard.addresses import Networks, counted_source, valid_address
from openivr.guard.guessing import Attempt, GuessingGuard, Verdict
from openivr.sip.digest import Credentials, DigestError, NonceSource
from openivr.sip.message import (
    NameAddress,
    SipParseError,
    SipRequest,
    SipResponse,
    response_to,
    split_commas,
)
from openivr.sip.transport import TransportName
from openivr.store.models import User
from openivr.store.registrations import (
    live_registrations,
    remove_all_registrations,
    remove_registration,
    save_registration,
)

log = logging.getLogger(__name__)

MIN_EXPIRES = 60
MAX_EXPIRES = 3600


@dataclass(frozen=True)
class Binding:
    """A registered phone: its contact, the address its REGISTER came from, the Path it took."""

    contact: str
    source: tuple[str, int]
    route: list[str] = field(default_factory=list)
    transport: TransportName = "UDP"


def client_address(request: SipRequest, source: tuple[str, int], trusted: Networks) -> str:
    """Who sent a request: its transport source, or, when that is a trusted proxy, the
    nearest hop below it in Via that is not trusted (its `received`, which the proxy stamps
    when the address differs from the sent-by, else its sent-by host)."""
    host = source[0]
    if host not in trusted:
        return host
    try:
        vias = request.vias
    except SipParseError:
        return host
    for via in vias[1:]:
        hop = valid_address(via.params.get("received") or via.host)
        if hop is None:
            return host
        if hop not in trusted:
            return hop
    return host


class Registrar:
    """Answers REGISTER requests and tells where a user's phones are."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        realm: str,
        *,
        min_expires: int = MIN_EXPIRES,
        max_expires: int = MAX_EXPIRES,
        nonces: NonceSource | None = None,
        guard: GuessingGuard | None = None,
        trusted: Networks | None = None,
    ) -> None:
        if not realm:
            raise ValueError("the registrar needs a realm (the SIP domain)")
        if not 0 < min_expires <= max_expires:
            raise ValueError(f"expiry bounds {min_expires}..{max_expires} are not 0 < min <= max")
        self.sessions = sessions
        self.realm = realm
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.nonces = nonces or NonceSource()
        # Counts wrong passwords per address and user; refuses guessers without a check.
        self.guard = guard
        self.trusted = trusted or Networks()

    def _challenge(self, request: SipRequest, *, stale: bool = False) -> SipResponse:
        value = self.nonces.challenge(self.realm, stale=stale)
        return response_to(request, 401, extra=[("WWW-Authenticate", value)])

    async def handle(
        self, request: SipRequest, source: tuple[str, int], transport: TransportName = "UDP"
    ) -> SipResponse:
        """The response to one REGISTER from `source` over `transport` (UDP, TCP or TLS)."""
        header = request.headers.get("Authorization")
        client = client_address(request, source, self.trusted)
        attempt = Attempt.of(
            "sip", counted_source(client), request.to.user() or "", client in self.trusted
        )
        if not header:
            # A guesser this node already refuses gets no new challenge (no database read).
            known = self.guard.refused_here(attempt) if self.guard is not None else None
            if known is not None:
                assert self.guard is not None
                self.guard.events.refused(known.refused, "sip", attempt.source, attempt.username)
                return self._refused(request, known)
            return self._challenge(request)
        try:
            credentials = Credentials.parse(header)
        except DigestError as exc:
            return response_to(request, 400, f"Bad Request ({exc})"[:120])
        if credentials.realm != self.realm:
            return self._challenge(request)
        freshness = self.nonces.check(credentials.nonce)
        if freshness != "ok":
            return self._challenge(request, stale=freshness == "stale")
        user_id = request.to.user() or ""
        if credentials.username != user_id:
            return response_to(request, 403, "Forbidden (username is not the To user)")
        verdict = Verdict()
        if self.guard is not None:
            verdict = await self.guard.check(attempt)
            if verdict.refused:
                return self._refused(request, verdict)
        async with self.sessions() as db:
            user = await db.get(User, user_id)
            stored = user.sip_password if user is not None else ""
            # Unknown users, users without a SIP password and wrong passwords get one answer.
            if not stored or not credentials.verify("REGISTER", stored):
                if self.guard is not None:
                    await self.guard.failure(
                        attempt,
                        verdict,
                        user_id=user.user_id if user is not None else None,
                        account_id=user.account_id if user is not None else None,
                    )
                return response_to(request, 403, "Forbidden (wrong credentials)")
            try:
                problem = await self._update(db, request, user_id, source, transport)
            except SipParseError as exc:
                return response_to(request, 400, f"Bad Request ({exc})"[:120])
            if problem is not None:
                return problem
            await db.commit()
            rows = await live_registrations(db, user_id)
        now = datetime.now(UTC)
        extra = [
            (
                "Contact",
                f"<{r.contact}>;expires={max(0, round((r.expires_at - now).total_seconds()))}",
            )
            for r in rows
        ]
        # A registrar that keeps the Path returns it (RFC 3327 §5.3).
        extra += [("Path", value) for value in request.headers.get_all("Path")]
        return response_to(request, 200, to_tag=None, extra=extra)

    @staticmethod
    def _refused(request: SipRequest, verdict: Verdict) -> SipResponse:
        # Refused without looking at the password; Retry-After says when trying makes sense.
        return response_to(
            request,
            403,
            "Forbidden (too many failed attempts)",
            extra=[("Retry-After", str(verdict.retry_after()))],
        )

    async def _update(
        self,
        db: AsyncSession,
        request: SipRequest,
        user_id: str,
        source: tuple[str, int],
        transport: TransportName,
    ) -> SipResponse | None:
        contacts = request.headers.get_all("Contact")
        default = request.headers.get("Expires")
        if default is not None and not default.strip().isdigit():
            return response_to(request, 400, "Bad Request (Expires is not a number)")
        if contacts == ["*"]:
            if default is None or int(default) != 0:
                return response_to(request, 400, "Bad Request (Contact: * needs Expires: 0)")
            await remove_all_registrations(db, user_id)
            return None
        now = datetime.now(UTC)
        for value in contacts:
            address = NameAddress.parse(value)
            asked = address.params.get("expires", default if default is not None else "")
            seconds = int(asked) if asked.strip().isdigit() else self.max_expires
            if seconds == 0:
                await remove_registration(db, user_id, address.uri)
                continue
            if seconds < self.min_expires:
                return response_to(request, 423, extra=[("Min-Expires", str(self.min_expires))])
            seconds = min(seconds, self.max_expires)
            await save_registration(
                db,
                user_id=user_id,
                contact=address.uri,
                source=f"{source[0]}:{source[1]}",
                call_id=request.call_id,
                cseq=request.cseq.number,
                user_agent=request.headers.get("User-Agent") or "",
                expires_at=now + timedelta(seconds=seconds),
                path=", ".join(request.headers.get_all("Path")),
                transport=transport,
            )
        return None

    async def contacts(self, user_id: str) -> list[str]:
        """The contact URIs of a user's registered phones (unexpired)."""
        return [binding.contact for binding in await self.bindings(user_id)]

    async def bindings(self, user_id: str) -> list[Binding]:
        """Each registered phone: where to send its calls and along which route."""
        async with self.sessions() as db:
            rows = await live_registrations(db, user_id)
        out: list[Binding] = []
        for row in rows:
            host, _, port = row.source.rpartition(":")
            if host and port.isdigit():
                route = split_commas(row.path) if row.path else []
                address = (host.strip("[]"), int(port))
                transport: TransportName = "UDP"
                if row.transport in ("TCP", "TLS"):
                    transport = "TCP" if row.transport == "TCP" else "TLS"
                out.append(Binding(row.contact, address, route, transport))
        return out
