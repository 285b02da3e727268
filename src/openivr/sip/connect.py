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

Where a call rings and how its places ring at once (forks, redirects, the trunk's digest)
is forks.py's, shared with the callbacks' legs (placed.py).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from openivr.audio import g711, tones
from openivr.sip.bridge import MediaBridge
from openivr.sip.call import MediaCall
from openivr.sip.forks import Forks, RingTarget
from openivr.sip.media import RtpSession
from openivr.sip.message import SipParseError, SipRequest, SipResponse, SipUri
from openivr.sip.refer import refer
from openivr.sip.rtp import RtpPacket
from openivr.sip.sdp import LocalSession, MediaAgreement, SdpError
from openivr.sip.server import SipServer
from openivr.sip.srtp import SdesKey, SrtpRefused, secure, unsecure
from openivr.sip.transfer import TransferLeg, TransferTarget, leg_target
from openivr.sip.transport import TransportName
from openivr.sip.uac import OutgoingCall

if TYPE_CHECKING:
    from openivr.sip.registrar import Registrar

log = logging.getLogger(__name__)

OnAnswer = Callable[[], Awaitable[None] | None]


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


@lru_cache(maxsize=2)
def ringback_frames(codec: g711.Codec) -> tuple[bytes, ...]:
    """One ringback cadence (1 s tone, 4 s silence) as 20 ms frames in `codec`."""
    return tuple(g711.encode_frames(tones.ringback(1), codec))


class Ringback:
    """Loops the ringback tone on a caller's session until stopped, each cadence in the
    session's codec of the moment (a re-INVITE may change it while the target rings)."""

    def __init__(self, session: RtpSession) -> None:
        self.session = session
        self.on = False

    def start(self) -> None:
        """Start (or keep) ringing."""
        if not self.on:
            self.on = True
            self._again()

    def _again(self) -> None:
        if self.on:
            self.session.play(ringback_frames(self.session.codec), self._again)

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

    async def direct(self, text: str) -> RingTarget:
        """Where a SIP address is rung (ValueError when it is no SIP URI we can call)."""
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
            return [replace(await self.direct(target.value), owner=target.owner)]
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
            found = [await self.direct(target.user_sip_uri)]
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
            target=leg_target(targets[0].kind, name) if targets else "team:",
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
        self.on_winner: Callable[[str], None] | None = None
        self.server = connector.server
        self.call = call
        self.leg = leg
        self.ring_targets = ring_targets
        self.caller_id = caller_id
        self.forks: Forks | None = None
        self.session: RtpSession | None = None
        # What the target's leg runs on now: its answer, then its re-offers (hold, resume).
        self.agreement: MediaAgreement | None = None
        self.bridge: MediaBridge | None = None
        self.ringback = Ringback(call.rtp_session)
        self.caller_unclocked = False
        self.local: LocalSession | None = None  # our SDP (and SRTP key) towards every fork

    async def run(self, on_answer: OnAnswer | None) -> TransferLeg:
        try:
            return await self._run(on_answer)
        finally:
            self._cleanup()

    async def _open_media(self) -> LocalSession:
        session, self.local = await open_leg_media(self.server, self.call.codec, self.ring_targets)
        self.session = session
        self.bridge = MediaBridge(self.call.rtp_session, session)
        return self.local

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
        forks = self.forks = Forks(
            self.connector, leg, self.ring_targets, self.caller_id, call.codec, local
        )
        forks.on_winner = self.on_winner
        forks.on_provisional = self._early_media
        await forks.start()
        winner = await forks.ring(call, self.ring_time)
        if winner is None:
            return leg
        return await self._bridged(winner, local, on_answer)

    def _early_media(self, response: SipResponse) -> None:
        if self.bridge is None or self.session is None or self.caller_unclocked:
            return
        if response.status != 183 or response.content_type != "application/sdp":
            return
        assert self.forks is not None
        try:
            agreement = self.forks.agreed(self.forks.fork_of(response), response.body)
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

    def _apply(self, agreement: MediaAgreement) -> None:
        assert self.session is not None
        apply_agreement(self.session, agreement, self.local)
        self.agreement = agreement

    async def _bridged(
        self, winner: OutgoingCall, local: LocalSession, on_answer: OnAnswer | None
    ) -> TransferLeg:
        call, leg, forks = self.call, self.leg, self.forks
        assert winner.answer is not None and self.bridge is not None and forks is not None
        try:
            agreement = forks.agreed(forks.forks[winner], winner.answer.body)
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
                    self._apply(forks.agreed(forks.forks[winner], request.body))
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
        fork = forks.forks[winner]
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

    def _cleanup(self) -> None:
        if self.forks is not None:
            self.forks.close()
        if self.session is not None:
            self.leg.packets_to_target = self.session.stats.packets_sent
            self.leg.packets_from_target = self.session.stats.packets_received
            self.leg.target_rtp = self.session.stats
        self.call.key_sink = None
        self.ringback.stop()
        if self.bridge is not None:
            self.bridge.release()
        if self.session is not None:
            self.session.close()
        if self.caller_unclocked and not self.call.ended:
            self.call.clock.add(self.call.rtp_session)  # back to the menu's audio


async def open_leg_media(
    server: SipServer, codec: g711.Codec, ring_targets: list[RingTarget]
) -> tuple[RtpSession, LocalSession]:
    """A media session for a call we place, silent until it is answered, and our SDP for it
    (OSError when no RTP port is free)."""
    session = RtpSession(codec, 0, 101, ("127.0.0.1", 9), on_audio=_ignore, on_event=_ignore)
    session.sending = False  # nothing to send until the far end answers
    await session.open(server.ports.bind(server.config.host))
    # The first place rung decides the media address we offer (all share one session).
    towards = ring_targets[0].address if ring_targets else ("127.0.0.1", 9)
    key = SdesKey.new() if server.config.srtp != "off" else None
    return session, LocalSession(server.address_for(towards), session.local_port, key=key)


def apply_agreement(
    session: RtpSession, agreement: MediaAgreement, local: LocalSession | None
) -> None:
    """Run a placed call's media as the far end's answer (or re-offer) says."""
    if agreement.srtp is not None and local is not None and local.key:
        secure(session, local.key, agreement.srtp)
    else:
        unsecure(session)
    session.use(agreement.codec, agreement.payload_type, agreement.receives)
    session.event_payload_type = agreement.event_payload_type
    session.remote = (agreement.remote_address, agreement.remote_port)
    session.sending = agreement.may_send
