"""SIP over TLS with a real phone: baresip calls in over TLS and presses a key; calls we place
go over TLS where the target's URI says so, and only to a certificate we trust."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import trustme

from openivr.calls.layer import tls_of
from openivr.settings import Settings
from openivr.sip.call import Dtmf, HungUp, PlaybackFinished
from openivr.sip.connect import Connector, parse_trunk
from openivr.sip.server import SipServer, SipServerConfig
from openivr.sip.srtp import SrtpMode
from openivr.sip.tls import TlsConfig
from openivr.sip.transfer import TransferTarget

from .conftest import DemoIvr
from .softphone import Certificates, Softphone, free_pair
from .transfer_peers import TransferDesk, pcap, start_sipp

pytestmark = pytest.mark.peer


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])


async def wait_until(predicate: object, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return Certificates.make(tmp_path / "node-certs")


@pytest.fixture
def srtp_mode() -> SrtpMode:
    return "offer"


@pytest.fixture
async def tls_ivr(
    certs: Certificates, srtp_mode: SrtpMode
) -> AsyncIterator[tuple[SipServer, DemoIvr]]:
    demo = DemoIvr()
    server = SipServer(
        demo.route,
        SipServerConfig(
            host="127.0.0.1",
            port=0,
            tls_port=0,
            tls=TlsConfig.load(str(certs.cert), str(certs.key), str(certs.ca)),
            srtp=srtp_mode,
        ),
        on_call_end=demo.records.append,
    )
    await server.start()
    try:
        yield server, demo
    finally:
        await server.stop()


# Settings -----------------------------------------------------------------------------------


def test_tls_settings_are_checked_before_start(tmp_path: Path, certs: Certificates) -> None:
    other = Certificates.make(tmp_path / "other")
    base = replace(Settings(), sip_port=5060)
    good = replace(base, sip_tls_port=5061, tls_cert=str(certs.cert), tls_key=str(certs.key))
    assert tls_of(good).has_certificate
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    cases = {
        "--sip-tls-port: needs --tls-cert": replace(good, tls_cert="", tls_key=""),
        "--tls-key: needed with --tls-cert": replace(good, tls_key=""),
        "--sip-tls-port: 5060 is --sip-port's": replace(good, sip_tls_port=5060),
        "--sip-tls-port: 5061..5062 overlap": replace(good, workers=2),
        "--tls-cert: '/nowhere.pem' is not a file": replace(good, tls_cert="/nowhere.pem"),
        "--tls-key: ": replace(good, tls_key=str(other.key)),  # another certificate's key
        "--tls-cert/--tls-key: cannot load": replace(good, tls_cert=str(tmp_path / "garbage.pem")),
        "--tls-ca-file: ": replace(good, tls_ca_file=str(tmp_path / "garbage.pem")),
    }
    for start, settings in cases.items():
        with pytest.raises(ValueError) as refused:
            tls_of(settings)
        assert str(refused.value).startswith(start), (start, str(refused.value))
        assert "\n" not in str(refused.value)
    mismatch = cases["--tls-key: "]
    with pytest.raises(ValueError, match="is not the key of the certificate"):
        tls_of(mismatch)


# Calls into the node over TLS ---------------------------------------------------------------


async def test_baresip_calls_over_tls_and_a_key_press_is_acted_on(
    tls_ivr: tuple[SipServer, DemoIvr], tmp_path: Path, certs: Certificates
) -> None:
    server, demo = tls_ivr
    demo.tone_seconds = 20.0  # '1' interrupts the prompt and hangs up
    phone = Softphone.prepare(
        tmp_path / "phone", "<sip:bob@127.0.0.1;transport=tls>;regint=0", ca=certs.ca
    )
    await phone.start(f"/dial sip:100@127.0.0.1:{server.tls_port};transport=tls")
    try:
        await wait_until(lambda: demo.calls and demo.calls[0].state == "answered")
        await asyncio.sleep(1.0)  # the caller's audio flows
        phone.press("1")
        await asyncio.wait_for(demo.done.wait(), 10)
    finally:
        out = await phone.stop()
    [invite] = demo.invites
    assert invite.transport == "TLS", out[-2000:]
    call = demo.calls[0]
    assert call.transport == "TLS"
    assert Dtmf("1", "rfc4733") in demo.events
    assert call.hangup_event == HungUp("us", "hangup")  # the key was acted on
    assert call.stats.packets_received > 25


async def test_baresip_with_srtp_over_tls_is_heard_and_hears_us_decrypted(
    tls_ivr: tuple[SipServer, DemoIvr], tmp_path: Path, certs: Certificates
) -> None:
    server, demo = tls_ivr
    demo.tone_seconds = 2.0  # we play 440 Hz; the phone speaks 600 Hz
    phone = Softphone.prepare(
        tmp_path / "phone",
        "<sip:bob@127.0.0.1;transport=tls>;regint=0;mediaenc=srtp-mand",
        ca=certs.ca,
        record=True,
    )
    await phone.start(f"/dial sip:100@127.0.0.1:{server.tls_port};transport=tls")
    try:
        await wait_until(lambda: PlaybackFinished(interrupted=False) in demo.events)
        call = demo.calls[0]
        phone.press("2")  # record what the caller says until '#'
        await wait_until(lambda: call.recording)
        await asyncio.sleep(1.5)
        phone.press("#")
        await wait_until(lambda: demo.recordings)
        phone.press("1")  # hang up
        await asyncio.wait_for(demo.done.wait(), 10)
    finally:
        out = await phone.stop()
    assert demo.keys() == "21", out[-3000:]  # "#" ended the recording
    assert call.agreement.srtp is not None and call.agreement.profile == "RTP/SAVP"
    assert "SRTP is Enabled" in out
    # What the phone said reached us decrypted ...
    heard_by_us = np.frombuffer(demo.recordings[0].pcm, dtype="<i2")
    assert demo.recordings[0].seconds > 1.0
    assert abs(dominant_hz(heard_by_us, 8000) - 600) < 10
    # ... and what we played reached the phone, which decrypted it.
    samples, rate = phone.heard()
    assert (np.abs(samples) > 1000).sum() / rate > 1.5
    assert abs(dominant_hz(samples, rate) - 440) < 10
    [record] = demo.records
    assert record.transport == "TLS" and record.srtp


async def test_srtp_keys_over_plain_udp_are_refused(
    tls_ivr: tuple[SipServer, DemoIvr], tmp_path: Path
) -> None:
    server, demo = tls_ivr
    phone = Softphone.prepare(tmp_path / "phone", "<sip:bob@127.0.0.1>;regint=0;mediaenc=srtp-mand")
    await phone.start(f"/dial sip:100@127.0.0.1:{server.udp_port}", seconds=4)
    try:
        await wait_until(lambda: demo.records)
    finally:
        out = await phone.stop()
    [record] = demo.records
    assert record.status == 488 and "TLS" in record.reason, out[-2000:]
    assert not demo.calls


@pytest.mark.parametrize("srtp_mode", ["require"])
async def test_a_node_that_requires_srtp_refuses_plain_rtp_even_over_tls(
    tls_ivr: tuple[SipServer, DemoIvr], tmp_path: Path, certs: Certificates
) -> None:
    server, demo = tls_ivr
    phone = Softphone.prepare(
        tmp_path / "phone", "<sip:bob@127.0.0.1;transport=tls>;regint=0", ca=certs.ca
    )
    await phone.start(f"/dial sip:100@127.0.0.1:{server.tls_port};transport=tls", seconds=4)
    try:
        await wait_until(lambda: demo.records)
    finally:
        out = await phone.stop()
    [record] = demo.records
    assert record.status == 488 and "requires SRTP" in record.reason, out[-2000:]
    assert "488" in out


async def test_the_tls_port_speaks_only_tls(tls_ivr: tuple[SipServer, DemoIvr]) -> None:
    server, _demo = tls_ivr
    reader, writer = await asyncio.open_connection("127.0.0.1", server.tls_port)
    writer.write(b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    # Plain text on the TLS port is a failed handshake: the connection is closed, unanswered.
    assert await asyncio.wait_for(reader.read(), 12) == b""
    writer.close()


# Calls we place over TLS --------------------------------------------------------------------


async def tls_target(tmp_path: Path, certs: Certificates) -> tuple[Softphone, int]:
    """A baresip phone that answers by itself on TLS; its TLS port."""
    port = free_pair()
    phone = Softphone.prepare(
        tmp_path / "target",
        "<sip:tess@127.0.0.1>;regint=0;answermode=auto",
        listen_port=port,
        certificate=certs.chain,
    )
    await phone.start(seconds=30)
    return phone, port + 1


async def call_and_transfer(
    tmp_path: Path, node_tls: TlsConfig, uri: str, scenario: str = "transfer_caller_bye.xml"
) -> tuple[TransferDesk, SipServer]:
    desk = TransferDesk()
    server = SipServer(
        desk.route, SipServerConfig(host="127.0.0.1", port=0, tls_port=0, tls=node_tls)
    )
    await server.start()
    try:
        desk.connector = Connector(server, timeout=10)
        desk.target = TransferTarget("sip", uri)
        caller = await start_sipp(
            scenario,
            tmp_path,
            remote=f"127.0.0.1:{server.udp_port}",
            values={"audio_pcap": pcap("g711a.pcap"), "hold_ms": "3000", "wait_ms": "15000"},
        )
        try:
            await caller.finish()
            await asyncio.wait_for(desk.done.wait(), 10)
        finally:
            caller.stop()
    finally:
        await server.stop()
    return desk, server


@pytest.mark.parametrize("form", ["transport=tls", "sips"])
async def test_a_target_that_asks_for_tls_is_called_over_tls(
    tmp_path: Path, certs: Certificates, form: str
) -> None:
    target, port = await tls_target(tmp_path, certs)
    uri = (
        f"sip:tess@127.0.0.1:{port};transport=tls"
        if form == "transport=tls"
        else f"sips:tess@127.0.0.1:{port}"
    )
    try:
        # The node's own certificate, and the target's CA trusted.
        node_tls = TlsConfig.load(str(certs.cert), str(certs.key), str(certs.ca))
        desk, _server = await call_and_transfer(tmp_path, node_tls, uri)
    finally:
        out = await target.stop()
    [leg] = desk.legs
    assert leg.status == "answered" and leg.ended_by == "caller", out[-3000:]
    assert leg.packets_to_target > 50 and leg.packets_from_target > 50
    # Only TLS listens on that port (baresip takes TCP on the one below it).
    assert "Call established" in out


async def test_a_tls_target_with_a_certificate_we_do_not_trust_is_not_called(
    tmp_path: Path, certs: Certificates
) -> None:
    target, port = await tls_target(tmp_path, certs)
    try:
        stranger = Certificates.make(tmp_path / "stranger", trustme.CA())
        # The node trusts another CA than the one that signed the target's certificate.
        node_tls = TlsConfig.load(str(certs.cert), str(certs.key), str(stranger.ca))
        desk, _server = await call_and_transfer(
            tmp_path,
            node_tls,
            f"sip:tess@127.0.0.1:{port};transport=tls",
            "transfer_caller_waits.xml",
        )
    finally:
        out = await target.stop()
    [leg] = desk.legs
    assert leg.status == "unreachable" and leg.answered_at is None
    assert desk.still_up == [True]  # the caller stays with us
    assert "Call established" not in out


def test_trunks_and_targets_name_tls_as_sips_or_transport_tls() -> None:
    assert str(parse_trunk("sips:trunk.example.com")) == "sips:trunk.example.com"
    assert parse_trunk("sip:trunk.example.com;transport=tls") is not None
    for wrong, says in (
        ("sips:trunk.example.com;transport=udp", "reached over TLS only"),
        ("sip:trunk.example.com;transport=sctp", "is not udp, tcp or tls"),
    ):
        with pytest.raises(ValueError, match=says):
            parse_trunk(wrong)
