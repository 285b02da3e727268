"""Transfers with real peers: SIPp calls us, we transfer to a SIPp target (or a SIPp trunk)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openivr.sip.call import Dtmf, HungUp, MediaCall
from openivr.sip.connect import Connector
from openivr.sip.media import RtpSession
from openivr.sip.server import Accept, Invite, Reject, SipServer, SipServerConfig
from openivr.sip.transfer import TransferLeg, TransferTarget

from .transfer_peers import CALLER_ID, Sipp, TransferDesk, desk, free_port, pcap, start_sipp

pytestmark = pytest.mark.peer
__all__ = ["desk"]

TARGET_VALUES = {"ring_ms": "300", "from_user": r"\+46700000001"}


def caller_values(**more: str) -> dict[str, str]:
    values = {"audio_pcap": pcap("g711a.pcap"), "hold_ms": "5500", "wait_ms": "30000"}
    values.update(more)
    return values


async def transfer(
    server: SipServer,
    handler: TransferDesk,
    tmp_path: Path,
    caller_scenario: str,
    caller: dict[str, str],
) -> TransferLeg:
    sipp = await start_sipp(
        caller_scenario, tmp_path, remote=f"127.0.0.1:{server.udp_port}", values=caller
    )
    try:
        await sipp.finish()
        await asyncio.wait_for(handler.done.wait(), 10)
    finally:
        sipp.stop()
    [leg] = handler.legs
    return leg


async def test_bridge_relays_audio_both_ways_and_caller_hangup_ends_both(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path
) -> None:
    server, handler = desk
    # The target speaks PCMU, the caller PCMA: the bridge transcodes.
    target = await start_sipp(
        "callee_answer.xml",
        tmp_path,
        values={**TARGET_VALUES, "ruri_user": "bob", "callee_pt": "0", "callee_codec": "PCMU"},
        extra=("-rtp_echo",),
    )
    try:
        handler.connector = Connector(server)
        handler.target = TransferTarget("sip", f"sip:bob@127.0.0.1:{target.port}")
        leg = await transfer(server, handler, tmp_path, "transfer_caller_bye.xml", caller_values())
        await target.finish()  # the target got its BYE
    finally:
        target.stop()
    assert leg.status == "answered" and leg.sip_code == 200
    assert leg.ended_by == "caller"
    assert handler.answered == 1
    assert leg.answered_at is not None and leg.ended_at is not None
    # The caller's 4.7 s of audio reached the target, which echoed it back to the caller.
    assert leg.packets_to_target > 150
    assert leg.packets_from_target > 150
    assert handler.calls[0].stats.packets_sent > 150
    assert handler.still_up == [False]


async def test_target_hangup_ends_the_caller_too(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path
) -> None:
    server, handler = desk
    target = await start_sipp(
        "callee_hangs_up.xml",
        tmp_path,
        values={
            **TARGET_VALUES,
            "ruri_user": "carol",
            "callee_pt": "8",
            "callee_codec": "PCMA",
            "hold_ms": "2500",
        },
        extra=("-rtp_echo",),
    )
    try:
        handler.connector = Connector(server)
        handler.target = TransferTarget("sip", f"sip:carol@127.0.0.1:{target.port}")
        leg = await transfer(
            server, handler, tmp_path, "transfer_caller_waits.xml", caller_values()
        )
        await target.finish()
    finally:
        target.stop()
    assert leg.status == "answered" and leg.ended_by == "target"
    assert leg.packets_to_target > 50 and leg.packets_from_target > 50
    assert handler.calls[0].hangup_event is not None
    assert handler.calls[0].hangup_event.by == "us"


async def test_busy_target_returns_busy_and_caller_stays(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path
) -> None:
    server, handler = desk
    target = await start_sipp(
        "callee_busy.xml", tmp_path, values={**TARGET_VALUES, "ruri_user": "dave"}
    )
    try:
        handler.connector = Connector(server)
        handler.target = TransferTarget("sip", f"sip:dave@127.0.0.1:{target.port}")
        leg = await transfer(
            server, handler, tmp_path, "transfer_caller_waits.xml", caller_values()
        )
        await target.finish()
    finally:
        target.stop()
    assert (leg.status, leg.sip_code) == ("busy", 486)
    assert leg.answered_at is None and handler.answered == 0
    assert handler.still_up == [True]  # back in the menu; the handler then hung up


async def test_no_answer_cancels_the_target_and_caller_stays(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path
) -> None:
    server, handler = desk
    target = await start_sipp(
        "callee_rings.xml", tmp_path, values={**TARGET_VALUES, "ruri_user": "erin"}
    )
    try:
        handler.connector = Connector(server, timeout=1.5)
        handler.target = TransferTarget("sip", f"sip:erin@127.0.0.1:{target.port}")
        leg = await transfer(
            server, handler, tmp_path, "transfer_caller_waits.xml", caller_values()
        )
        await target.finish()  # it saw CANCEL, answered 487 and got our ACK
    finally:
        target.stop()
    assert leg.status == "no_answer"
    assert handler.still_up == [True]
    # While it rang the caller heard ringback from us.
    assert handler.calls[0].stats.packets_sent > 50


async def test_caller_hanging_up_while_it_rings_cancels_the_target(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path
) -> None:
    server, handler = desk
    target = await start_sipp(
        "callee_rings.xml", tmp_path, values={**TARGET_VALUES, "ruri_user": "frank"}
    )
    try:
        handler.connector = Connector(server)
        handler.target = TransferTarget("sip", f"sip:frank@127.0.0.1:{target.port}")
        leg = await transfer(
            server, handler, tmp_path, "transfer_caller_bye.xml", caller_values(hold_ms="1500")
        )
        await target.finish()
    finally:
        target.stop()
    assert leg.status == "cancelled" and leg.ended_by == "caller"
    assert handler.still_up == [False]


VERIFY = '<verifyauth assign_to="authvalid" username="openivr" password="s3cret-trunk"/>'
CHALLENGES = {
    # 407 from a proxy-style trunk: SIPp checks the Proxy-Authorization fields.
    "407": {
        "challenge": "407 Proxy Authentication Required",
        "challenge_header": "Proxy-Authenticate",
        "answer_header": "Proxy-Authorization",
        "verify_action": "",
        "verify_branch": '<nop next="good"/>',
    },
    # 401: SIPp also recomputes the digest response itself.
    "401": {
        "challenge": "401 Unauthorized",
        "challenge_header": "WWW-Authenticate",
        "answer_header": "Authorization",
        "verify_action": VERIFY,
        "verify_branch": '<nop test="authvalid" next="good"/>',
    },
}


@pytest.mark.parametrize("challenge", ["407", "401"])
async def test_number_through_a_trunk_that_demands_digest_auth(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path, challenge: str
) -> None:
    server, handler = desk
    trunk = await start_sipp(
        "trunk_auth.xml",
        tmp_path,
        values={
            **CHALLENGES[challenge],
            **TARGET_VALUES,
            "ruri_user": r"\+46701234567",
            "callee_pt": "8",
            "callee_codec": "PCMA",
            "trunk_user": "openivr",
            "trunk_password": "s3cret-trunk",
        },
        extra=("-rtp_echo",),
    )
    try:
        handler.connector = Connector(
            server,
            trunk=f"sip:127.0.0.1:{trunk.port}",
            trunk_user="openivr",
            trunk_password="s3cret-trunk",
        )
        handler.target = TransferTarget("phnum", "+46701234567")
        leg = await transfer(
            server, handler, tmp_path, "transfer_caller_bye.xml", caller_values(hold_ms="2000")
        )
        await trunk.finish()
    finally:
        trunk.stop()
    assert leg.status == "answered", leg
    assert leg.uri == f"sip:+46701234567@127.0.0.1:{trunk.port}"
    assert leg.ended_by == "caller"


async def test_number_without_a_trunk_is_no_trunk(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path
) -> None:
    server, handler = desk
    handler.connector = Connector(server)
    handler.target = TransferTarget("phnum", "+46701234567")
    leg = await transfer(server, handler, tmp_path, "transfer_caller_waits.xml", caller_values())
    assert leg.status == "no_trunk" and leg.uri == ""
    assert handler.still_up == [True]


async def test_silent_target_is_unreachable(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path
) -> None:
    server, handler = desk
    handler.connector = Connector(server, timeout=1.5)
    handler.target = TransferTarget("sip", f"sip:ghost@127.0.0.1:{free_port()}")
    leg = await transfer(server, handler, tmp_path, "transfer_caller_waits.xml", caller_values())
    assert leg.status == "unreachable"
    assert handler.still_up == [True]


@pytest.mark.parametrize(
    ("refer_status", "notify", "expected", "still_up"),
    [
        ("202 Accepted", "SIP/2.0 200 OK", "answered", False),
        ("202 Accepted", "SIP/2.0 486 Busy Here", "busy", True),
        ("603 Decline", "", "rejected", True),
    ],
)
async def test_refer_mode_sends_refer_with_the_target(
    desk: tuple[SipServer, TransferDesk],
    tmp_path: Path,
    refer_status: str,
    notify: str,
    expected: str,
    still_up: bool,
) -> None:
    server, handler = desk
    handler.connector = Connector(server, mode="refer")
    handler.target = TransferTarget("sip", "sip:grace@127.0.0.1:5999")
    scenario = "refer_caller.xml" if notify else "refer_caller_declines.xml"
    values = caller_values(refer_to=r"sip:grace@127\.0\.0\.1:5999", refer_status=refer_status)
    values["notify"] = notify
    leg = await transfer(server, handler, tmp_path, scenario, values)
    assert leg.status == expected
    assert handler.still_up == [still_up]


def test_target_and_connector_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="kind"):
        TransferTarget("fax", "123")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        TransferTarget("sip", " ")
    server = SipServer(lambda invite: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="trunk"):
        Connector(server, trunk="http://example")
    with pytest.raises(ValueError, match="mode"):
        Connector(server, mode="magic")  # type: ignore[arg-type]
    assert CALLER_ID.startswith("+")


async def test_keys_reach_the_target_as_rfc4733_events(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path
) -> None:
    """The target is a second OpenIVR server: it reports which keys it received, and how."""
    server, handler = desk
    heard: list[Dtmf] = []
    done = asyncio.Event()

    async def target_handler(call: MediaCall) -> None:
        await call.answer()
        while not isinstance(event := await call.next_event(), HungUp):
            if isinstance(event, Dtmf):
                heard.append(event)
        done.set()

    async def target_route(invite: Invite) -> Accept | Reject:
        return Accept(target_handler)

    async with SipServer(target_route, SipServerConfig(host="127.0.0.1", port=0)) as target:
        handler.connector = Connector(server)
        handler.target = TransferTarget("sip", f"sip:keys@127.0.0.1:{target.udp_port}")
        values = caller_values(hold_ms="1200", dtmf_pcap=pcap("dtmf_2833_1.pcap"))
        leg = await transfer(server, handler, tmp_path, "transfer_caller_keys.xml", values)
        await asyncio.wait_for(done.wait(), 10)
    assert leg.status == "answered" and leg.ended_by == "caller"
    # INFO "5" became RFC 4733 packets; the caller's RFC 4733 "1" was passed on.
    assert heard == [Dtmf("5", "rfc4733"), Dtmf("1", "rfc4733")]


async def answering_target(
    tmp_path: Path, user: str, scenario: str = "callee_answer.xml", *options: str
) -> Sipp:
    """A SIPp target that answers as `user` in PCMA and echoes the audio it gets."""
    values = {**TARGET_VALUES, "ruri_user": user, "callee_pt": "8", "callee_codec": "PCMA"}
    return await start_sipp(scenario, tmp_path, values=values, extra=("-rtp_echo", *options))


async def call_through(
    server: SipServer, handler: TransferDesk, tmp_path: Path, uri: str
) -> TransferLeg:
    """A SIPp caller is transferred to `uri`, talks and hangs up."""
    handler.connector = Connector(server)
    handler.target = TransferTarget("sip", uri)
    return await transfer(server, handler, tmp_path, "transfer_caller_bye.xml", caller_values())


async def test_a_record_routed_target_gets_ack_and_bye_along_its_route(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path
) -> None:
    server, handler = desk
    # SIPp fails unless our ACK and BYE carry the 200's Record-Route as Route, reversed.
    target = await answering_target(tmp_path, "rita", "callee_record_routed.xml")
    try:
        leg = await call_through(server, handler, tmp_path, f"sip:rita@127.0.0.1:{target.port}")
        await target.finish()
    finally:
        target.stop()
    assert leg.status == "answered" and leg.ended_by == "caller"


async def test_a_target_that_asks_for_tcp_is_called_over_tcp(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path
) -> None:
    server, handler = desk
    # SIPp listens on TCP only (-t t1): over UDP the INVITE would never arrive.
    target = await answering_target(tmp_path, "tess", "callee_answer.xml", "-t", "t1")
    try:
        uri = f"sip:tess@127.0.0.1:{target.port};transport=tcp"
        leg = await call_through(server, handler, tmp_path, uri)
        await target.finish()  # it answered and then got our BYE, over TCP
    finally:
        target.stop()
    assert leg.status == "answered" and leg.ended_by == "caller"
    assert leg.packets_to_target > 150 and leg.packets_from_target > 150


async def test_a_tcp_target_nobody_listens_on_is_unreachable_and_caller_stays(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path
) -> None:
    server, handler = desk
    handler.connector = Connector(server)
    handler.target = TransferTarget("sip", f"sip:ghost@127.0.0.1:{free_port()};transport=tcp")
    leg = await transfer(server, handler, tmp_path, "transfer_caller_waits.xml", caller_values())
    assert leg.status == "unreachable" and leg.answered_at is None
    assert handler.still_up == [True]


async def test_a_redirect_is_followed_to_where_it_points(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path
) -> None:
    server, handler = desk
    mobile = await answering_target(tmp_path, "mobile")
    desk_phone = await start_sipp(
        "callee_redirects.xml",
        tmp_path,
        values={
            **TARGET_VALUES,
            "ruri_user": "uma",
            "redirect_uri": f"sip:mobile@127.0.0.1:{mobile.port}",
        },
    )
    try:
        uri = f"sip:uma@127.0.0.1:{desk_phone.port}"
        leg = await call_through(server, handler, tmp_path, uri)
        await desk_phone.finish()  # it said 302 and got our ACK
        await mobile.finish()  # where it pointed answered, then got our BYE
    finally:
        desk_phone.stop()
        mobile.stop()
    assert leg.status == "answered" and leg.uri == f"sip:mobile@127.0.0.1:{mobile.port}"
    assert leg.packets_to_target > 150 and leg.packets_from_target > 150


async def test_a_target_that_only_talks_is_sent_no_audio(
    desk: tuple[SipServer, TransferDesk], tmp_path: Path
) -> None:
    """An announcement or music-on-hold target answers a=sendonly: it hears nothing from us."""
    server, handler = desk
    values = {**TARGET_VALUES, "ruri_user": "moh", "callee_pt": "8", "callee_codec": "PCMA"}
    target = await start_sipp(
        "callee_sendonly.xml", tmp_path, values={**values, "target_pcap": pcap("g711a.pcap")}
    )
    try:
        leg = await call_through(server, handler, tmp_path, f"sip:moh@127.0.0.1:{target.port}")
        await target.finish()
    finally:
        target.stop()
    assert leg.status == "answered" and leg.ended_by == "caller"
    # The caller streamed 4.7 s of audio; none of it went to a target that said sendonly,
    # while what the target played reached the caller.
    assert leg.packets_to_target == 0
    assert leg.packets_from_target > 150


@pytest.mark.parametrize(("hold", "answer"), [("sendonly", "recvonly"), ("inactive", "inactive")])
async def test_a_target_that_holds_is_sent_no_audio_until_it_resumes(
    desk: tuple[SipServer, TransferDesk],
    tmp_path: Path,
    hold: str,
    answer: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(RtpSession, "keep_send_intervals", True)
    server, handler = desk
    values = {
        **TARGET_VALUES,
        "ruri_user": "holder",
        "callee_pt": "8",
        "callee_codec": "PCMA",
        "talk_ms": "1000",
        "hold_direction": hold,
        "held_answer": answer,  # SIPp fails unless our answer to the hold says this
        "held_ms": "1500",
    }
    target = await start_sipp("callee_holds.xml", tmp_path, values=values, extra=("-rtp_echo",))
    try:
        uri = f"sip:holder@127.0.0.1:{target.port}"
        leg = await call_through(server, handler, tmp_path, uri)
        await target.finish()
    finally:
        target.stop()
    assert leg.status == "answered" and leg.ended_by == "caller"
    assert leg.target_rtp is not None
    # The caller streamed audio the whole time: the target got it, then nothing while it held
    # (1.5 s), then the rest once it resumed.
    gaps = list(leg.target_rtp.send_intervals)
    longest = max(gaps)
    assert longest > 1.0, f"audio went on to the held target (longest pause {longest:.3f} s)"
    assert gaps.index(longest) > 25 and len(gaps) - gaps.index(longest) > 25
