"""The UAS against a scripted UDP/TCP phone: transactions, dialogs, DTMF, recording."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import cast

import numpy as np
import pytest

from openivr.audio import g711, tones
from openivr.sip.call import Dtmf, HungUp, PlaybackFinished
from openivr.sip.message import SipRequest, SipResponse, parse_message
from openivr.sip.rtp import RtpPacket, TelephoneEvent
from openivr.sip.sdp import SessionDescription
from openivr.sip.server import SipServer, SipServerConfig

from .conftest import DemoIvr, Dialogue, RawPeer, pcm_rms, sdp_offer


class RtpPeer(asyncio.DatagramProtocol):
    """The phone's RTP socket: collects what the server sends, sends audio and events."""

    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.got_packet = asyncio.Event()
        self.seq = 100
        self.ts = 5000

    @classmethod
    async def open(cls) -> RtpPeer:
        peer = cls()
        await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: peer, local_addr=("127.0.0.1", 0)
        )
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.packets.append(RtpPacket.parse(data))
        self.got_packet.set()

    def send(self, port: int, pt: int, payload: bytes, *, ts: int | None = None) -> None:
        assert self.transport is not None
        packet = RtpPacket(pt, self.seq & 0xFFFF, self.ts if ts is None else ts, 42, payload)
        self.seq += 1
        self.transport.sendto(packet.serialise(), ("127.0.0.1", port))

    async def stream(self, port: int, pcm: np.ndarray, codec: g711.Codec = "PCMU") -> None:
        pt = 0 if codec == "PCMU" else 8
        for frame in g711.encode_frames(pcm.astype(np.int16), codec):
            self.send(port, pt, frame)
            self.ts += 160
            await asyncio.sleep(0.002)  # faster than real time; order is what matters


@pytest.fixture
async def phone() -> AsyncIterator[tuple[RawPeer, RtpPeer]]:
    sip, rtp = await RawPeer.open(), await RtpPeer.open()
    yield sip, rtp
    sip.close()
    assert rtp.transport is not None
    rtp.transport.close()


async def establish(
    server: SipServer, sip: RawPeer, rtp: RtpPeer, formats: str = "0 8 101"
) -> tuple[Dialogue, SipResponse]:
    d = Dialogue(sip.port)
    sip.send(server.udp_port, d.request("INVITE", body=sdp_offer(rtp.port, formats)))
    await sip.response(100)
    await sip.response(180)
    ok = await sip.response(200)
    d.remote_tag = ok.to.tag or ""
    sip.send(server.udp_port, d.request("ACK", branch=d.branch + "a"))
    return d, ok


def rtp_port_of(response: SipResponse) -> int:
    audio = SessionDescription.parse(response.body).audio()
    assert audio is not None
    return audio.port


async def wait_for(predicate: object, timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def test_options_and_unsupported_methods(ivr: tuple[SipServer, DemoIvr], phone) -> None:
    server, _ = ivr
    sip, _ = phone
    d = Dialogue(sip.port)
    sip.send(server.udp_port, d.request("OPTIONS"))
    ok = await sip.response(200)
    assert "INVITE" in (ok.headers.get("Allow") or "")
    sip.send(server.udp_port, Dialogue(sip.port).request("REGISTER"))
    refused = await sip.response(405)
    assert "BYE" in (refused.headers.get("Allow") or "")
    sip.send(server.udp_port, Dialogue(sip.port).request("FROB"))
    await sip.response(501)


async def test_malformed_gets_400_or_is_dropped_and_server_lives(
    ivr: tuple[SipServer, DemoIvr], phone
) -> None:
    server, _ = ivr
    sip, _ = phone
    sip.send(server.udp_port, b"\x00\xffnot sip at all\r\n\r\n")
    broken = Dialogue(sip.port).request("OPTIONS").replace("Max-Forwards: 70", "Max-Forwards 70")
    sip.send(server.udp_port, broken)
    bad = await sip.response(400)
    assert "header line" in bad.reason
    sip.send(server.udp_port, Dialogue(sip.port).request("OPTIONS"))
    await sip.response(200)
    assert server.malformed == 2


async def test_call_answered_audio_flows_and_caller_bye_ends_it(
    ivr: tuple[SipServer, DemoIvr], phone
) -> None:
    server, demo = ivr
    sip, rtp = phone
    d = Dialogue(sip.port)
    sip.send(server.udp_port, d.request("INVITE", body=sdp_offer(rtp.port)))
    await sip.response(100)
    await sip.response(180)
    ok = await sip.response(200)
    assert ok.content_type == "application/sdp" and ok.to.tag
    # No ACK yet: the 200 is retransmitted (timer G style), and an INVITE resend gets it too.
    again = await sip.response(200, timeout=3)
    assert again.body == ok.body
    sip.send(server.udp_port, d.request("INVITE", body=sdp_offer(rtp.port)))
    assert (await sip.response(200)).to.tag == ok.to.tag
    d.remote_tag = ok.to.tag or ""
    sip.send(server.udp_port, d.request("ACK", branch=d.branch + "a"))
    await wait_for(lambda: len(rtp.packets) >= 10)
    first = rtp.packets[0]
    assert first.payload_type == 0 and first.marker
    assert not any(p.marker for p in rtp.packets[1:10])
    seqs = [p.sequence for p in rtp.packets[:10]]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    # Each packet is 20 ms (160 samples) after the last; a tick the loaded machine skipped moves
    # the timestamp on by whole packets (it follows the clock), never by less.
    steps = [
        b.timestamp - a.timestamp for a, b in zip(rtp.packets, rtp.packets[1:10], strict=False)
    ]
    assert all(step > 0 and step % 160 == 0 for step in steps), steps
    assert pcm_rms(g711.decode(first.payload + rtp.packets[5].payload, "PCMU").tobytes()) > 1000
    d.cseq += 1
    sip.send(server.udp_port, d.request("BYE", branch=d.branch + "b"))
    await sip.response(200)
    await asyncio.wait_for(demo.done.wait(), 5)
    assert demo.events[-1] == HungUp("caller", "bye")
    assert PlaybackFinished(interrupted=True) in demo.events
    [record] = demo.records
    assert (record.caller, record.dialed, record.ended_by, record.status) == (
        "alice",
        "100",
        "caller",
        200,
    )
    assert record.answered_at is not None and record.ended_at >= record.answered_at
    call = demo.calls[0]
    assert call.stats.packets_sent >= 10 and call.remote_rtp == ("127.0.0.1", rtp.port)


async def test_cancel_before_answer_gives_487(ivr: tuple[SipServer, DemoIvr], phone) -> None:
    server, demo = ivr
    demo.answer = False
    sip, rtp = phone
    d = Dialogue(sip.port)
    invite = d.request("INVITE", body=sdp_offer(rtp.port))
    sip.send(server.udp_port, invite)
    await sip.response(180)
    cancel = invite.replace("INVITE sip:", "CANCEL sip:", 1).replace("1 INVITE", "1 CANCEL")
    cancel = cancel.split("Content-Type")[0] + "Content-Length: 0\r\n\r\n"
    sip.send(server.udp_port, cancel)
    statuses = {(await sip.response()).status, (await sip.response()).status}
    assert statuses == {200, 487}
    await asyncio.wait_for(demo.done.wait(), 5)
    assert demo.calls[0].hangup_event == HungUp("caller", "cancel")
    # A CANCEL for a transaction we do not know gets 481.
    sip.send(server.udp_port, Dialogue(sip.port).request("CANCEL"))
    await sip.response(481)


async def test_unknown_number_404_and_no_codec_488(ivr: tuple[SipServer, DemoIvr], phone) -> None:
    server, demo = ivr
    sip, rtp = phone
    d = Dialogue(sip.port, user="999")
    sip.send(server.udp_port, d.request("INVITE", body=sdp_offer(rtp.port)))
    resp = await sip.response()
    assert resp.status == 404
    assert demo.invites[0].route_key == "999" and demo.invites[0].caller == "alice"
    sip.send(server.udp_port, d.request("ACK", in_dialog=False))
    d2 = Dialogue(sip.port)
    sip.send(server.udp_port, d2.request("INVITE", body=sdp_offer(rtp.port, "9 18")))
    assert (await sip.response()).status == 488
    assert [r.status for r in demo.records] == [404, 488]
    assert len(demo.invites) == 1  # the router never saw the call it could not take


async def test_reinvite_hold_and_update_keep_the_call(
    ivr: tuple[SipServer, DemoIvr], phone
) -> None:
    server, demo = ivr
    sip, rtp = phone
    d, _ = await establish(server, sip, rtp)
    d.cseq += 1
    d.branch = d.branch + "r"
    sip.send(
        server.udp_port,
        d.request(
            "INVITE",
            body=sdp_offer(rtp.port, direction="sendonly"),
            extra="Session-Expires: 1800;refresher=uac\r\nSupported: timer\r\n",
        ),
    )
    ok = await sip.response(200)
    assert "a=recvonly" in ok.body.decode()
    assert (ok.headers.get("Session-Expires") or "").startswith("1800")
    sip.send(server.udp_port, d.request("ACK", branch=d.branch + "a"))
    d.cseq += 1
    d.branch += "u"
    sip.send(server.udp_port, d.request("UPDATE", body=sdp_offer(rtp.port)))
    upd = await sip.response(200)
    assert "a=sendrecv" in upd.body.decode()
    d.cseq += 1
    d.branch += "o"
    sip.send(server.udp_port, d.request("OPTIONS"))
    await sip.response(200)
    assert not demo.calls[0].ended
    d.cseq += 1
    d.branch += "b"
    sip.send(server.udp_port, d.request("BYE"))
    await sip.response(200)
    await asyncio.wait_for(demo.done.wait(), 5)


async def test_info_dtmf_then_our_bye_is_retransmitted_until_answered(
    ivr: tuple[SipServer, DemoIvr], phone
) -> None:
    server, demo = ivr
    sip, rtp = phone
    d, _ = await establish(server, sip, rtp)
    for key, (ctype, body) in enumerate(
        [("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"), ("application/dtmf", "1")]
    ):
        d.cseq += 1
        d.branch += str(key)
        sip.send(server.udp_port, d.request("INFO", body=body, content_type=ctype))
        await sip.response(200)
    bye = await sip.receive()
    assert isinstance(bye, SipRequest) and bye.method == "BYE"
    assert bye.to.tag == d.tag and bye.from_.tag == d.remote_tag
    again = await sip.receive(timeout=3)  # we did not answer: timer E resends it
    assert isinstance(again, SipRequest) and again.method == "BYE"
    assert again.vias[0].branch == bye.vias[0].branch
    from openivr.sip.message import response_to

    sip.send(server.udp_port, response_to(again, 200).serialise())
    await asyncio.wait_for(demo.done.wait(), 5)
    assert demo.keys() == "51"
    assert [e.source for e in demo.events if isinstance(e, Dtmf)] == ["info", "info"]
    assert demo.calls[0].hangup_event == HungUp("us", "hangup")
    await wait_for(lambda: not server.transactions.requests_in_flight)


async def test_rfc4733_key_reported_once_and_barges_in(
    ivr: tuple[SipServer, DemoIvr], phone
) -> None:
    server, demo = ivr
    sip, rtp = phone
    _, ok = await establish(server, sip, rtp)
    port = rtp_port_of(ok)
    await wait_for(lambda: len(rtp.packets) > 3)
    for duration, end in [(160, False)] * 3 + [(320, False), (480, True), (480, True), (480, True)]:
        rtp.send(port, 101, TelephoneEvent(5, end, 10, duration).serialise(), ts=9000)
    await wait_for(lambda: demo.keys() == "5")
    await asyncio.sleep(0.1)
    assert demo.keys() == "5"
    assert demo.events[:2] == [PlaybackFinished(interrupted=True), Dtmf("5", "rfc4733")]
    assert demo.calls[0].stats.packets_received == 7
    await demo.calls[0].hangup()


async def test_a_key_after_a_barge_in_prompt_ended_stops_nothing_else(
    ivr: tuple[SipServer, DemoIvr], phone
) -> None:
    # The prompt that took barge-in is over; what plays now (a transfer's ringback is played
    # on the session itself) is no prompt of the call's and plays on when a key comes.
    server, demo = ivr
    demo.tone_seconds = 0.2
    sip, rtp = phone
    _, ok = await establish(server, sip, rtp)
    await wait_for(lambda: PlaybackFinished(interrupted=False) in demo.events)
    call = demo.calls[0]
    call.rtp_session.play([g711.encode(tones.silence(20), "PCMU")] * 100, lambda: None)
    rtp.send(rtp_port_of(ok), 101, TelephoneEvent(5, True, 10, 480).serialise(), ts=9000)
    await wait_for(lambda: demo.keys() == "5")
    assert call.rtp_session.playing
    assert PlaybackFinished(interrupted=True) not in demo.events
    await call.hangup()


async def test_inband_dtmf_without_telephone_event(ivr: tuple[SipServer, DemoIvr], phone) -> None:
    server, demo = ivr
    sip, rtp = phone
    _, ok = await establish(server, sip, rtp, formats="8")
    assert "telephone-event" not in ok.body.decode()
    assert demo.calls[0].codec == "PCMA"
    signal = np.concatenate(
        [tones.dtmf("7", 60), tones.silence(100), tones.dtmf("*", 60), tones.silence(100)]
    )
    await rtp.stream(rtp_port_of(ok), signal, "PCMA")
    await wait_for(lambda: demo.keys() == "7*")
    assert {e.source for e in demo.events if isinstance(e, Dtmf)} == {"inband"}
    await demo.calls[0].hangup()


async def test_recording_until_hash(ivr: tuple[SipServer, DemoIvr], phone) -> None:
    server, demo = ivr
    sip, rtp = phone
    d, ok = await establish(server, sip, rtp)
    port = rtp_port_of(ok)
    d.cseq += 1
    d.branch += "i"
    sip.send(
        server.udp_port,
        d.request("INFO", body="Signal=2\r\n", content_type="application/dtmf-relay"),
    )
    await sip.response(200)
    await wait_for(lambda: demo.calls[0].recording)
    speech = tones.beep(600.0, 1500, -10.0)
    await rtp.stream(port, speech)
    rtp.send(port, 101, TelephoneEvent(11, True, 10, 800).serialise(), ts=123456)
    await wait_for(lambda: len(demo.recordings) == 1)
    rec = demo.recordings[0]
    assert rec.reason == "key" and rec.key == "#"
    assert rec.seconds == pytest.approx(1.5, abs=0.03)
    assert pcm_rms(rec.pcm) > 3000
    assert "#" not in demo.keys()  # the stop key ends the recording instead
    await demo.calls[0].hangup()


async def test_recording_stops_on_silence_and_on_length(
    ivr: tuple[SipServer, DemoIvr], phone
) -> None:
    server, demo = ivr
    sip, rtp = phone
    _, ok = await establish(server, sip, rtp)
    port = rtp_port_of(ok)
    call = demo.calls[0]
    call.start_recording(max_seconds=10, max_silence=0.5)
    await rtp.stream(port, np.concatenate([tones.beep(500.0, 1000, -10.0), tones.silence(700)]))
    await wait_for(lambda: len(demo.recordings) == 1)
    assert demo.recordings[0].reason == "silence"
    assert demo.recordings[0].seconds == pytest.approx(1.0, abs=0.05)
    call.start_recording(max_seconds=0.4, max_silence=None)
    await rtp.stream(port, tones.beep(500.0, 1000, -10.0))
    await wait_for(lambda: len(demo.recordings) == 2)
    assert demo.recordings[1].reason == "max_length" and demo.recordings[1].seconds == 0.4
    call.start_recording(max_seconds=10)
    await rtp.stream(port, tones.beep(500.0, 200, -10.0))
    await call.hangup()
    await wait_for(lambda: len(demo.recordings) == 3)
    assert demo.recordings[2].reason == "hangup" and demo.recordings[2].seconds > 0.1


async def test_max_calls_gives_503(phone) -> None:
    demo = DemoIvr()
    server = SipServer(demo.route, SipServerConfig(port=0, max_calls=1))
    async with server:
        sip, rtp = phone
        await establish(server, sip, rtp)
        sip.send(server.udp_port, Dialogue(sip.port).request("INVITE", body=sdp_offer(rtp.port)))
        busy = await sip.response()
        assert busy.status == 503 and busy.headers.get("Retry-After")


async def test_tcp_framing_options_and_call(ivr: tuple[SipServer, DemoIvr]) -> None:
    server, demo = ivr
    reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
    rtp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp_sock.bind(("127.0.0.1", 0))
    local_port = writer.get_extra_info("sockname")[1]
    d = Dialogue(local_port)
    options = d.request("OPTIONS").replace("SIP/2.0/UDP", "SIP/2.0/TCP")
    invite = Dialogue(local_port).request("INVITE", body=sdp_offer(rtp_sock.getsockname()[1]))
    invite = invite.replace("SIP/2.0/UDP", "SIP/2.0/TCP")
    # Two messages in one segment, the second split: framing must follow Content-Length.
    data = ("\r\n\r\n" + options + invite).encode()
    writer.write(data[:-30])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(data[-30:])

    async def read_message() -> SipResponse | SipRequest:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        return parse_message(head + await reader.readexactly(length), stream=True)

    statuses = []
    while 200 not in statuses or statuses.count(200) < 2:
        msg = await asyncio.wait_for(read_message(), 5)
        assert isinstance(msg, SipResponse)
        statuses.append(msg.status)
    assert statuses[0] == 200 and 180 in statuses
    assert "transport=tcp" in (msg.headers.get("Contact") or "")
    assert demo.calls[0].transport == "TCP"
    writer.close()
    rtp_sock.close()
    await demo.calls[0].hangup()


async def test_a_draining_server_refuses_new_calls_and_says_so_to_pings(
    ivr: tuple[SipServer, DemoIvr], phone
) -> None:
    server, _ = ivr
    sip, rtp = phone
    await server.drain(0)  # nothing in progress: returns at once
    sip.send(server.udp_port, Dialogue(sip.port).request("OPTIONS"))
    await sip.response(503)
    sip.send(server.udp_port, Dialogue(sip.port).request("INVITE", body=sdp_offer(rtp.port)))
    refused = await sip.response(503)
    assert refused.headers.get("Retry-After")
    assert server.active_calls == 0


@pytest.mark.parametrize(
    ("advertise", "expected"),
    [
        ("127.0.0.3", "127.0.0.3"),  # --sip-advertise (e.g. the public address behind NAT)
        (None, "127.0.0.1"),  # all interfaces: the local address facing this caller
    ],
)
async def test_on_all_interfaces_callers_are_told_an_address_they_can_reach(
    phone: tuple[RawPeer, RtpPeer], advertise: str | None, expected: str
) -> None:
    sip, rtp = phone
    demo = DemoIvr()
    config = SipServerConfig(host="0.0.0.0", port=0, max_calls=5, advertised_address=advertise)
    server = SipServer(demo.route, config)
    await server.start()
    try:
        d, ok = await establish(server, sip, rtp)
        assert SessionDescription.parse(ok.body).connection == expected
        assert f"@{expected}:" in (ok.headers.get("Contact") or "")
        # The advertised address really reaches the node's media socket.
        assert rtp.transport is not None
        [call] = server.calls.values()
        for seq in range(5):
            packet = RtpPacket(0, seq, seq * 160, 0x1234, b"\xff" * 160)
            rtp.transport.sendto(packet.serialise(), (expected, rtp_port_of(ok)))
        await wait_for(lambda: call.rtp_session.stats.packets_received >= 5)
        sip.send(server.udp_port, d.request("BYE", branch=d.branch + "b"))
        await sip.response(200)
    finally:
        await server.stop()
