"""Call transfers: connect a caller to a SIP URI, a phone number (via the trunk) or a user.

Two ways to transfer, chosen per Connector:

* bridge (default, B2BUA): we place a new call to the target while the caller hears ringback
  (or the target's early media), then relay the audio both ways until one side hangs up,
  and hang up the other side. If the target does not answer, the caller stays with us.
* refer: a blind REFER (RFC 3515) asks the caller's side to call the target itself; NOTIFYs
  tell how that went; on success we leave the call (BYE after the final NOTIFY, RFC 5589).

Users are reached on every phone registered with the registrar (rung in parallel, first to
answer wins), else at their SIP URI, else at their phone number through the trunk. Several
targets (a team's members) ring at once the same way; the leg says whose phone answered.

Over 600 lines for now: the bridged transfer (`_BridgedTransfer`: forks, redirects, early
media, the bridge and its re-offers) shares `RingTarget`, `Ringback` and the connector with
the rest; moving it to a module of its own means moving those to sip/transfer.py first.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from openivr.audio import g711, tones
from openivr.sip.bridge import MediaBridge
from openivr.sip.call import MediaCall
from openivr.sip.media import RtpSession
from openivr.sip.message import NameAddress, SipParseError, SipRequest, SipResponse, SipUri
from openivr.sip.refer import refer
from openivr.sip.rtp import RtpPacket
from openivr.sip.sdp import LocalSession, MediaAgreement, SdpError, SessionDescription, negotiate
from openivr.sip.server import SipServer
from openivr.sip.srtp import SdesKey, SrtpMode, SrtpRefused, agree, secure, unsecure
from openivr.sip.transfer import (
    Interrupted,
    LegStatus,
    ReplyWait,
    TransferLeg,
    TransferTarget,
    status_for,
)
from openivr.sip.transport import TransportName
from openivr.sip.uac import OutgoingCall

if TYPE_CHECKING:
    from openivr.sip.registrar import Registrar

log = logging.getLogger(__name__)

# 3xx answers followed per transfer, so a redirect loop ends.
MAX_REDIRECTS = 5

OnAnswer = Callable[[], Awaitable[None] | None]


@dataclass(frozen=True)
class RingTarget:
    """One place a transfer rings: the INVITE's Request-URI and the address it goes to."""

    uri: str
    address: tuple[str, int]
    via_trunk: bool = False
    # TCP/TLS: the URI says ;transport=tcp/tls (or is sips:), or the phone registered so.
    transport: TransportName = "UDP"
    route: list[str] = field(default_factory=list)  # a registered phone's Path
    owner: str = ""  # the user whose phone this is (several targets rung at once)


def _sip_uri(text: str, what: str) -> SipUri:
    """A sip: or sips: URI we can call; ValueError names `what` it was meant to be and what is
    wrong."""
    try:
        uri = SipUri.parse(text)
    except SipParseError as exc:
        raise ValueError(f"{what} {text!r} is not a SIP URI like sip:host:port: {exc}") from None
    if uri.scheme not in ("sip", "sips"):
        raise ValueError(f"{what} {text!r} must be a sip: or sips: URI")
    transport = uri.params.get("transport", "").lower()
    if transport not in ("", "udp", "tcp", "tls"):
        raise ValueError(f"{what} {text!r}: transport={transport} is not udp, tcp or tls")
    if uri.scheme == "sips" and transport in ("udp", "tcp"):
        raise ValueError(f"{what} {text!r}: a sips: URI is reached over TLS only")
    return uri


def parse_trunk(text: str) -> SipUri | None:
    """The outbound trunk's URI (None when there is none); ValueError says what is wrong."""
    return _sip_uri(text, "trunk") if text else None


def _transport(uri: SipUri) -> TransportName:
    """UDP, or TCP or TLS when the URI asks for it (a sips: URI, or ;transport=tls)."""
    asked = uri.params.get("transport", "").lower()
    if uri.scheme == "sips" or asked == "tls":
        return "TLS"
    return "TCP" if asked == "tcp" else "UDP"


def _host_of(uri: str) -> str | None:
    """The host a URI names (a TLS peer's certificate must name it), None if unreadable."""
    try:
        return SipUri.parse(uri).host or None
    except SipParseError:
        return None


@lru_cache(maxsize=2)
def ringback_frames(codec: g711.Codec) -> tuple[bytes, ...]:
    """One ringback cadence (1 s tone, 4 s silence) as 20 ms frames in `codec`."""
    return tuple(g711.encode_frames(tones.ringback(1), codec))


class Ringback:
    """Loops the ringback tone on a caller's session until stopped."""

    def __init__(self, session: RtpSession, codec: g711.Codec) -> None:
        self.session = session
        self.frames = ringback_frames(codec)
        self.on = False

    def start(self) -> None:
        """Start (or keep) ringing."""
        if not self.on:
            self.on = True
            self.session.play(self.frames, self._again)

    def _again(self) -> None:
        if self.on:
            self.session.play(self.frames, self._again)

    def stop(self) -> None:
        """Stop ringing (silence follows until something else is sent)."""
        if self.on:
            self.on = False
            self.session.stop_playing()


def _ignore(packet: RtpPacket) -> None:
    """Drop a packet."""


class Connector:
    """Places transfers for calls of a SipServer (bridged or by REFER)."""

    def __init__(
        self,
        server: SipServer,
        *,
        trunk: str = "",
        trunk_user: str = "",
        trunk_password: str = "",
        timeout: float = 30.0,
        mode: Literal["bridge", "refer"] = "bridge",
        registrar: Registrar | None = None,
    ) -> None:
        if mode not in ("bridge", "refer"):
            raise ValueError(f"transfer mode {mode!r} is not 'bridge' or 'refer'")
        if not timeout > 0:
            raise ValueError(f"transfer timeout must be positive, got {timeout}")
        self.trunk = parse_trunk(trunk)
        self.server = server
        self.trunk_user = trunk_user
        self.trunk_password = trunk_password
        self.timeout = timeout
        self.mode = mode
        self.registrar = registrar

    # Where calls go ---------------------------------------------------------------------

    async def _address(self, uri: SipUri) -> tuple[str, int]:
        port = uri.port or (5061 if _transport(uri) == "TLS" else 5060)
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in uri.host else socket.AF_INET, uri.host)
            return uri.host, port
        except OSError:
            pass
        infos = await asyncio.get_running_loop().getaddrinfo(
            uri.host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM
        )
        if not infos:
            raise OSError(f"{uri.host} has no IPv4 address")
        return str(infos[0][4][0]), port

    async def _direct(self, text: str) -> RingTarget:
        uri = _sip_uri(text, "transfer target")
        return RingTarget(str(uri), await self._address(uri), transport=_transport(uri))

    async def _via_trunk(self, number: str) -> RingTarget | None:
        if self.trunk is None:
            return None
        digits = "".join(ch for ch in number if ch.isdigit() or ch == "+")
        if not digits.lstrip("+"):
            raise ValueError(f"phone number {number!r} has no digits")
        port = f":{self.trunk.port}" if self.trunk.port else ""
        transport = _transport(self.trunk)
        asked = self.trunk.params.get("transport", "").lower()
        params = f";transport={asked}" if asked in ("tcp", "tls") else ""
        uri = f"{self.trunk.scheme}:{digits}@{self.trunk.host}{port}{params}"
        return RingTarget(uri, await self._address(self.trunk), via_trunk=True, transport=transport)

    async def ring_targets(self, target: TransferTarget) -> list[RingTarget] | None:
        """Where to ring for a target; None when it needs the trunk and there is none."""
        if target.kind == "sip":
            return [replace(await self._direct(target.value), owner=target.owner)]
        if target.kind == "phnum":
            trunk = await self._via_trunk(target.value)
            return None if trunk is None else [replace(trunk, owner=target.owner)]
        found: list[RingTarget] = []
        if self.registrar is not None:
            phones = await self.registrar.bindings(target.value)
            found = [
                RingTarget(p.contact, p.source, route=p.route, transport=p.transport)
                for p in phones
            ]
        if not found and target.user_sip_uri:
            found = [await self._direct(target.user_sip_uri)]
        elif not found and target.user_phnum:
            trunk = await self._via_trunk(target.user_phnum)
            if trunk is None:
                return None
            found = [trunk]
        return [replace(place, owner=target.value) for place in found]

    async def _ring_targets_of(
        self, targets: Sequence[TransferTarget], leg: TransferLeg
    ) -> list[RingTarget] | None:
        """Every place to ring for all targets; None when only the missing trunk stood between
        them and a phone. A target that cannot be resolved is left out (logged)."""
        found: list[RingTarget] = []
        needed_trunk = False
        for target in targets:
            try:
                places = await self.ring_targets(target)
            except (OSError, ValueError) as exc:
                log.warning("transfer to %s: cannot resolve %s: %s", leg.target, target.value, exc)
                continue
            if places is None:
                needed_trunk = True
            else:
                found += places
        return None if needed_trunk and not found else found

    # Connecting ---------------------------------------------------------------------------

    async def connect(
        self,
        call: MediaCall,
        target: TransferTarget | Sequence[TransferTarget],
        caller_id: str,
        on_answer: OnAnswer | None = None,
        *,
        timeout: float | None = None,
        bridge: bool = False,
        on_winner: Callable[[str], None] | None = None,
    ) -> TransferLeg:
        """Transfer `call` to `target` (or to several at once, first answer wins: always
        bridged); returns once the transfer failed or the bridge ended. `timeout` is this
        transfer's ring time (default the connector's); `bridge` bridges even in refer mode;
        `on_winner` hears whose phone answered (a target's value) before `on_answer` runs."""
        targets = [target] if isinstance(target, TransferTarget) else list(target)
        name = ",".join(t.value for t in targets)
        leg = TransferLeg(
            target=f"{targets[0].kind}:{name}" if targets else "team:",
            uri="",
            status="unreachable",
            started_at=datetime.now(UTC),
        )
        ring_time = timeout if timeout is not None and timeout > 0 else self.timeout
        try:
            if len(targets) == 1:
                ring_targets = await self.ring_targets(targets[0])
            else:
                ring_targets = await self._ring_targets_of(targets, leg)
        except OSError as exc:
            log.warning("transfer to %s: cannot resolve: %s", leg.target, exc)
            return leg.finish("unreachable")
        if ring_targets is None:
            log.warning(
                "transfer to %s needs a SIP trunk but none is configured (--sip-trunk); "
                "the caller stays in the menu",
                leg.target,
            )
            return leg.finish("no_trunk")
        if not ring_targets:
            log.warning("transfer to %s: the user has no phone, SIP URI or number", leg.target)
            return leg.finish("unreachable")
        leg.uri = ring_targets[0].uri
        if call.ended:
            return leg.finish("cancelled")
        if self.mode == "refer" and not bridge and len(targets) == 1:
            return await refer(call, leg, ring_time)
        transfer = _BridgedTransfer(self, call, leg, ring_targets, caller_id, ring_time)
        transfer.on_winner = on_winner
        return await transfer.run(on_answer)


@dataclass
class _Fork:
    call: OutgoingCall
    ring_target: RingTarget
    final: int = 0
    bye: asyncio.Event = field(default_factory=asyncio.Event)
    srtp: SrtpMode = "off"  # what our offer to this place said about SRTP


class _BridgedTransfer:
    """One bridged transfer from INVITE to the last BYE."""

    def __init__(
        self,
        connector: Connector,
        call: MediaCall,
        leg: TransferLeg,
        ring_targets: list[RingTarget],
        caller_id: str,
        ring_time: float,
    ) -> None:
        self.connector = connector
        self.ring_time = ring_time
        self.winner: OutgoingCall | None = None
        self.on_winner: Callable[[str], None] | None = None
        self.server = connector.server
        self.call = call
        self.leg = leg
        self.ring_targets = ring_targets
        self.caller_id = caller_id
        self.queue: asyncio.Queue[tuple[OutgoingCall, SipResponse | None]] = asyncio.Queue()
        self.redirects = 0
        self.forks: dict[OutgoingCall, _Fork] = {}
        self.session: RtpSession | None = None
        # What the target's leg runs on now: its answer, then its re-offers (hold, resume).
        self.agreement: MediaAgreement | None = None
        self.bridge: MediaBridge | None = None
        self.ringback = Ringback(call.rtp_session, call.codec)
        self.caller_unclocked = False
        self.local: LocalSession | None = None  # our SDP (and SRTP key) towards every fork

    async def run(self, on_answer: OnAnswer | None) -> TransferLeg:
        try:
            return await self._run(on_answer)
        finally:
            self._cleanup()

    async def _open_media(self) -> LocalSession:
        server = self.server
        session = RtpSession(
            self.call.codec, 0, 101, ("127.0.0.1", 9), on_audio=_ignore, on_event=_ignore
        )
        session.sending = False  # nothing to send until the target answers
        await session.open(server.ports.bind(server.config.host))
        self.session = session
        self.bridge = MediaBridge(self.call.rtp_session, session)
        # The first place rung decides the media address we offer (all share one session).
        towards = self.ring_targets[0].address if self.ring_targets else ("127.0.0.1", 9)
        key = SdesKey.new() if server.config.srtp != "off" else None
        self.local = LocalSession(server.address_for(towards), session.local_port, key=key)
        return self.local

    async def _start_forks(self, local: LocalSession) -> None:
        for ring_target in self.ring_targets:
            await self._start_fork(ring_target, local)

    async def _start_fork(
        self, ring_target: RingTarget, local: LocalSession, *, insist: bool = False
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
                "transfer to %s: not rung: SRTP is required and it is reached over %s, not TLS",
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
                    server_hostname=_host_of(ring_target.uri),
                )
            else:
                peer = server.udp_peer(ring_target.address)
        except OSError as exc:  # this place is unreachable; others may ring
            log.info("transfer to %s: cannot connect: %s", ring_target.uri, exc)
            return None
        outgoing = OutgoingCall(
            server.core,
            ring_target.uri,
            peer,
            route=ring_target.route,
            caller_id=self.caller_id,
            from_host=from_host,
            sdp=local.offer(self.call.codec, srtp=srtp),
            listener=lambda c, r: self.queue.put_nowait((c, r)),
        )
        fork = _Fork(outgoing, ring_target, srtp=srtp)
        outgoing.on_bye = fork.bye.set
        self.forks[outgoing] = fork
        outgoing.send_invite()
        return outgoing

    async def _follow_redirect(
        self, response: SipResponse, local: LocalSession
    ) -> OutgoingCall | None:
        """A 3xx: ring the first sip: Contact it names instead (a few hops at most)."""
        if self.redirects >= MAX_REDIRECTS:
            log.info("transfer to %s: more than %d redirects", self.leg.uri, MAX_REDIRECTS)
            return None
        for contact in response.headers.get_all("Contact"):
            try:
                uri = NameAddress.parse(contact).uri
                ring_target = await self.connector._direct(uri)
            except (SipParseError, ValueError, OSError) as exc:
                log.info(
                    "transfer to %s: redirect to %r not followed: %s", self.leg.uri, contact, exc
                )
                continue
            self.redirects += 1
            log.info("transfer to %s: redirected (%d) to %s", self.leg.uri, response.status, uri)
            outgoing = await self._start_fork(ring_target, local)
            if outgoing is not None:
                return outgoing
        return None

    async def _run(self, on_answer: OnAnswer | None) -> TransferLeg:
        call, leg = self.call, self.leg
        try:
            local = await self._open_media()
        except OSError as exc:
            log.warning("transfer to %s: no RTP port: %s", leg.target, exc)
            return leg.finish("unreachable")
        if call.state in ("new", "ringing"):
            await call.ring()
        else:
            call.stop_playing()
            self.ringback.start()
        await self._start_forks(local)
        winner = await self._ring(local)
        if winner is None:
            return leg
        return await self._bridged(winner, local, on_answer)

    def _early_media(self, response: SipResponse) -> None:
        if self.bridge is None or self.session is None or self.caller_unclocked:
            return
        if response.status != 183 or response.content_type != "application/sdp":
            return
        try:
            agreement = self._agreed(self._fork_of(response), response.body)
        except (SdpError, SrtpRefused):
            return
        self._apply(agreement)
        self.ringback.stop()
        self._unclock_caller()
        self.bridge.early()

    def _unclock_caller(self) -> None:
        if not self.caller_unclocked and self.call.state == "answered":
            self.call.clock.remove(self.call.rtp_session)
            self.caller_unclocked = True

    def _fork_of(self, response: SipResponse) -> _Fork | None:
        return next((f for o, f in self.forks.items() if o.call_id == response.call_id), None)

    def _agreed(self, fork: _Fork | None, body: bytes) -> MediaAgreement:
        """The target's SDP as our agreement with it, SRTP decided as our offer said;
        SdpError or SrtpRefused when it cannot be used."""
        agreement = negotiate(SessionDescription.parse(body))
        offered = fork.srtp if fork is not None else "off"
        if offered == "off" and agreement.profile.startswith("RTP/S"):
            raise SrtpRefused("SRTP answered to an offer without it")
        theirs = agree(agreement.profile, agreement.srtp, offered, offered != "off", what="answer")
        return replace(agreement, srtp=theirs)

    def _apply(self, agreement: MediaAgreement) -> None:
        assert self.session is not None
        session = self.session
        if agreement.srtp is not None and self.local is not None and self.local.key:
            secure(session, self.local.key, agreement.srtp)
        else:
            unsecure(session)
        session.codec = agreement.codec
        session.payload_type = agreement.payload_type
        session.event_payload_type = agreement.event_payload_type
        session.remote = (agreement.remote_address, agreement.remote_port)
        session.sending = agreement.may_send
        self.agreement = agreement

    async def _ring(self, local: LocalSession) -> OutgoingCall | None:
        """Wait for the first answer; None when every fork failed, time ran out or caller left."""
        pending = set(self.forks)
        credentials = self.connector.trunk_user
        async with ReplyWait(self.call, self.ring_time) as wait:
            while pending:
                got = await wait.next(self.queue)
                if isinstance(got, Interrupted):
                    for outgoing in pending:
                        outgoing.cancel()
                    if got is Interrupted.CALLER_LEFT:
                        log.info("transfer to %s: the caller hung up while it rang", self.leg.uri)
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
                    self._early_media(response)
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
                    redirected = await self._follow_redirect(response, local)
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
                    again = await self._start_fork(fork.ring_target, local, insist=True)
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
            log.info("transfer to %s: no response (unreachable)", self.leg.uri)
            self.leg.finish("unreachable")
            return
        statuses = [status_for(c) for c in codes]
        for wanted in ("busy", "no_answer", "rejected"):
            if wanted in statuses:
                code = codes[statuses.index(wanted)]
                log.info("transfer to %s: %s (%s)", self.leg.uri, wanted, code)
                self.leg.finish(wanted, code)
                return

    async def _bridged(
        self, winner: OutgoingCall, local: LocalSession, on_answer: OnAnswer | None
    ) -> TransferLeg:
        call, leg = self.call, self.leg
        assert winner.answer is not None and self.bridge is not None
        try:
            agreement = self._agreed(self.forks[winner], winner.answer.body)
        except (SdpError, SrtpRefused) as exc:
            log.warning("transfer to %s: unusable SDP answer: %s", winner.uri, exc)
            winner.bye()
            return leg.finish("rejected", 488)
        self._apply(agreement)
        if call.state != "answered":
            await call.answer()
        self.ringback.stop()
        self._unclock_caller()
        self.bridge.connect()
        bridge = self.bridge
        call.key_sink = lambda key, source: bridge.to_target.send_key(key)
        winner.on_key = bridge.to_caller.send_key

        def reoffer(request: SipRequest) -> bytes:
            # A re-INVITE/UPDATE from the target (hold, new address): follow it, and answer
            # what we now do (a=recvonly to a hold with a=sendonly).
            if request.body:
                try:
                    self._apply(self._agreed(self.forks[winner], request.body))
                except (SdpError, SrtpRefused):
                    pass  # keep what the leg runs on
            return local.answer(self.agreement or agreement)

        winner.on_offer = reoffer
        leg.answered(winner.answer.status)
        leg.media = "SRTP" if agreement.srtp is not None else "RTP"
        if on_answer is not None:
            try:
                result = on_answer()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_answer hook failed for transfer to %s", winner.uri)
        fork = self.forks[winner]
        ended = asyncio.ensure_future(call.wait_ended())
        target_bye = asyncio.ensure_future(fork.bye.wait())
        try:
            await asyncio.wait({ended, target_bye}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            winner.bye()
            raise
        finally:
            ended.cancel()
            target_bye.cancel()
        if fork.bye.is_set():
            await call.hangup()
            return leg.hung_up("target")
        winner.bye()
        return leg.hung_up("caller")

    def _places(self) -> list[dict[str, object]]:
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

    def _cleanup(self) -> None:
        self.leg.rung = self._places()
        if self.session is not None:
            self.leg.packets_to_target = self.session.stats.packets_sent
            self.leg.packets_from_target = self.session.stats.packets_received
            self.leg.target_rtp = self.session.stats
        for outgoing in self.forks:
            if outgoing.state == "confirmed" and self.leg.status != "answered":
                outgoing.bye()  # answered but the transfer did not go on with it
            elif outgoing.state in ("calling", "early"):
                outgoing.cancel()
        self.call.key_sink = None
        self.ringback.stop()
        if self.bridge is not None:
            self.bridge.release()
        if self.session is not None:
            self.session.close()
        if self.caller_unclocked and not self.call.ended:
            self.call.clock.add(self.call.rtp_session)  # back to the menu's audio
