"""Ringing a call's places at once: one INVITE per place, all with the same offer; the first
2xx wins and the others are cancelled.

Both kinds of call we place ring this way: a bridged transfer (connect.py: a user's every
registered phone, a team's members) and a callback's legs (placed.py). Each place may
redirect (3xx, followed a few hops), ask the trunk's credentials (401/407) or refuse SRTP
proposed in RTP/AVP (488, asked again in RTP/SAVP); what each place did is kept for the record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from openivr.audio import g711
from openivr.sip.message import NameAddress, SipParseError, SipResponse, SipUri
from openivr.sip.sdp import LocalSession, MediaAgreement, SessionDescription, negotiate
from openivr.sip.srtp import SrtpMode, SrtpRefused, agree
from openivr.sip.transfer import Ending, Interrupted, LegStatus, ReplyWait, TransferLeg, status_for
from openivr.sip.transport import TransportName
from openivr.sip.uac import OutgoingCall

if TYPE_CHECKING:
    from openivr.sip.connect import Connector

log = logging.getLogger(__name__)

# 3xx answers followed per ring, so a redirect loop ends.
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class RingTarget:
    """One place a call rings: the INVITE's Request-URI and the address it goes to."""

    uri: str
    address: tuple[str, int]
    via_trunk: bool = False
    # TCP/TLS: the URI says ;transport=tcp/tls (or is sips:), or the phone registered so.
    transport: TransportName = "UDP"
    route: list[str] = field(default_factory=list)  # a registered phone's Path
    owner: str = ""  # the user whose phone this is (several targets rung at once)


def host_of(uri: str) -> str | None:
    """The host a URI names (a TLS peer's certificate must name it), None if unreadable."""
    try:
        return SipUri.parse(uri).host or None
    except SipParseError:
        return None


@dataclass
class Fork:
    """One place rung: its INVITE, the final answer it gave, whether it hung up since."""

    call: OutgoingCall
    ring_target: RingTarget
    final: int = 0
    bye: asyncio.Event = field(default_factory=asyncio.Event)
    srtp: SrtpMode = "off"  # what our offer to this place said about SRTP


class Forks:
    """The places of one ring, their INVITEs, and which answered first."""

    def __init__(
        self,
        connector: Connector,
        leg: TransferLeg,
        ring_targets: list[RingTarget],
        caller_id: str,
        codec: g711.Codec,
        local: LocalSession,
    ) -> None:
        self.connector = connector
        self.server = connector.server
        self.leg = leg
        self.ring_targets = ring_targets
        self.caller_id = caller_id
        self.codec = codec
        self.local = local  # our SDP (and SRTP key) towards every place
        self.queue: asyncio.Queue[tuple[OutgoingCall, SipResponse | None]] = asyncio.Queue()
        self.forks: dict[OutgoingCall, Fork] = {}
        self.redirects = 0
        self.winner: OutgoingCall | None = None
        # Told whose phone answered (before the winner is returned), and of each 1xx.
        self.on_winner: Callable[[str], None] | None = None
        self.on_provisional: Callable[[SipResponse], None] | None = None

    async def start(self) -> None:
        """INVITE every place."""
        for ring_target in self.ring_targets:
            await self._start_fork(ring_target)

    async def _start_fork(
        self, ring_target: RingTarget, *, insist: bool = False
    ) -> OutgoingCall | None:
        """INVITE one place (offering only SRTP when `insist`); None when it cannot even be
        connected to."""
        server = self.server
        # SRTP keys go only over TLS; with --srtp require a place reached otherwise is not rung.
        srtp: SrtpMode = server.config.srtp if ring_target.transport == "TLS" else "off"
        if insist and srtp != "off":
            srtp = "require"
        if server.config.srtp == "require" and srtp == "off":
            log.warning(
                "call to %s: not rung: SRTP is required and it is reached over %s, not TLS",
                ring_target.uri,
                ring_target.transport,
            )
            return None
        from_host = server.address_for(ring_target.address)
        trunk = self.connector.trunk
        if ring_target.via_trunk and trunk is not None:
            from_host = trunk.host  # trunks expect their own domain in From
        try:
            if ring_target.transport != "UDP":
                # Over TLS the certificate must name the host we call (the trunk's, the URI's).
                peer = await server.transports.stream_peer(
                    ring_target.transport,
                    ring_target.address,
                    server_hostname=host_of(ring_target.uri),
                )
            else:
                peer = server.udp_peer(ring_target.address)
        except OSError as exc:  # this place is unreachable; others may ring
            log.info("call to %s: cannot connect: %s", ring_target.uri, exc)
            return None
        outgoing = OutgoingCall(
            server.core,
            ring_target.uri,
            peer,
            route=ring_target.route,
            caller_id=self.caller_id,
            from_host=from_host,
            sdp=self.local.offer(self.codec, srtp=srtp),
            listener=lambda c, r: self.queue.put_nowait((c, r)),
        )
        fork = Fork(outgoing, ring_target, srtp=srtp)
        outgoing.on_bye = fork.bye.set
        self.forks[outgoing] = fork
        outgoing.send_invite()
        return outgoing

    async def _follow_redirect(self, response: SipResponse) -> OutgoingCall | None:
        """A 3xx: ring the first sip: Contact it names instead (a few hops at most)."""
        if self.redirects >= MAX_REDIRECTS:
            log.info("call to %s: more than %d redirects", self.leg.uri, MAX_REDIRECTS)
            return None
        for contact in response.headers.get_all("Contact"):
            try:
                uri = NameAddress.parse(contact).uri
                ring_target = await self.connector.direct(uri)
            except (SipParseError, ValueError, OSError) as exc:
                log.info("call to %s: redirect to %r not followed: %s", self.leg.uri, contact, exc)
                continue
            self.redirects += 1
            log.info("call to %s: redirected (%d) to %s", self.leg.uri, response.status, uri)
            outgoing = await self._start_fork(ring_target)
            if outgoing is not None:
                return outgoing
        return None

    def fork_of(self, response: SipResponse) -> Fork | None:
        """The place a response came from."""
        return next((f for o, f in self.forks.items() if o.call_id == response.call_id), None)

    def agreed(self, fork: Fork | None, body: bytes) -> MediaAgreement:
        """A place's SDP as our agreement with it, SRTP decided as our offer said;
        SdpError or SrtpRefused when it cannot be used."""
        agreement = negotiate(SessionDescription.parse(body))
        offered = fork.srtp if fork is not None else "off"
        if offered == "off" and agreement.profile.startswith("RTP/S"):
            raise SrtpRefused("SRTP answered to an offer without it")
        theirs = agree(agreement.profile, agreement.srtp, offered, offered != "off", what="answer")
        return replace(agreement, srtp=theirs)

    async def ring(self, until: Ending, ring_time: float) -> OutgoingCall | None:
        """Wait for the first answer; None when every place failed, time ran out or `until`
        ended (the caller hung up: the leg is `cancelled`)."""
        pending = set(self.forks)
        credentials = self.connector.trunk_user
        async with ReplyWait(until, ring_time) as wait:
            while pending:
                got = await wait.next(self.queue)
                if isinstance(got, Interrupted):
                    for outgoing in pending:
                        outgoing.cancel()
                    if got is Interrupted.CALLER_LEFT:
                        log.info("call to %s: the caller hung up while it rang", self.leg.uri)
                        self.leg.finish("cancelled", 487, by="caller")
                    else:
                        heard = any(o.responded for o in pending)
                        status: LegStatus = "no_answer" if heard else "unreachable"
                        self.leg.finish(status, 408 if heard else 0)
                    return None
                outgoing, response = got
                if outgoing not in pending:
                    continue
                if response is None:
                    pending.discard(outgoing)  # timer B: no response at all
                    continue
                if response.status < 200:
                    if self.on_provisional is not None:
                        self.on_provisional(response)
                    continue
                if response.status < 300:
                    for other in pending - {outgoing}:
                        other.cancel()
                    self.leg.uri = outgoing.uri
                    self.winner = outgoing
                    self.leg.answered_by = self.forks[outgoing].ring_target.owner
                    if self.on_winner is not None:
                        self.on_winner(self.leg.answered_by)
                    return outgoing
                fork = self.forks[outgoing]
                if 300 <= response.status < 400:
                    pending.discard(outgoing)
                    redirected = await self._follow_redirect(response)
                    if redirected is not None:
                        pending.add(redirected)
                        continue
                    fork.final = response.status
                    continue
                if (
                    response.status in (401, 407)
                    and credentials
                    and fork.ring_target.via_trunk
                    and outgoing.authenticate(response, credentials, self.connector.trunk_password)
                ):
                    continue
                if response.status in (401, 407):
                    outgoing.abandon()
                if response.status == 488 and fork.srtp == "offer":
                    # A phone set to SRTP only refuses SRTP proposed in RTP/AVP: ask in RTP/SAVP.
                    pending.discard(outgoing)
                    again = await self._start_fork(fork.ring_target, insist=True)
                    if again is not None:
                        pending.add(again)
                        continue
                fork.final = response.status
                pending.discard(outgoing)
        self._fail()
        return None

    def _fail(self) -> None:
        codes = [f.final for f in self.forks.values() if f.final]
        if not codes:
            log.info("call to %s: no response (unreachable)", self.leg.uri)
            self.leg.finish("unreachable")
            return
        statuses = [status_for(c) for c in codes]
        for wanted in ("busy", "no_answer", "rejected"):
            if wanted in statuses:
                code = codes[statuses.index(wanted)]
                log.info("call to %s: %s (%s)", self.leg.uri, wanted, code)
                self.leg.finish(wanted, code)
                return

    def places(self) -> list[dict[str, object]]:
        """How each place rung went, in the order rung."""
        places: list[dict[str, object]] = []
        for outgoing, fork in self.forks.items():
            if outgoing is self.winner and self.leg.status == "answered":
                status: LegStatus = "answered"
            elif fork.final:
                status = status_for(fork.final)
            elif self.winner is not None:
                status = "cancelled"  # another place answered first
            else:
                status = self.leg.status
            places.append(
                {
                    "owner": fork.ring_target.owner,
                    "uri": outgoing.uri,
                    "status": status,
                    "sip_code": fork.final,
                }
            )
        return places

    def close(self) -> None:
        """The ring is over: keep only an answered leg's winner; hang up a place that answered
        without being taken, cancel those still ringing."""
        self.leg.rung = self.places()
        for outgoing in self.forks:
            if outgoing.state == "confirmed" and self.leg.status != "answered":
                outgoing.bye()  # answered but the call did not go on with it
            elif outgoing.state in ("calling", "early"):
                outgoing.cancel()
