"""The registrar with real phones: SIP passwords set over the API, baresip and SIPp register,
and transfers to the user ring every registered device."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from openivr.audio import tones
from openivr.sip.connect import Connector
from openivr.sip.digest import Challenge, ha1
from openivr.sip.message import SipResponse
from openivr.sip.registrar import Registrar
from openivr.sip.server import SipServer, SipServerConfig
from openivr.sip.tls import TlsConfig
from openivr.sip.transfer import TransferTarget
from openivr.store.db import open_database
from openivr.store.models import User
from openivr.store.registrations import Registration
from tests.conftest import RunningServer

from .conftest import Dialogue, RawPeer, need_binary
from .softphone import Certificates
from .transfer_peers import TransferDesk, pcap, start_sipp

pytestmark = pytest.mark.peer

SIP_PASSWORD = "phone-pass-1"


@dataclass
class Pbx:
    """Our SIP server with a registrar on the API node's database, and a transfer handler."""

    server: SipServer
    registrar: Registrar
    desk: TransferDesk
    user_id: str
    domain: str


@pytest.fixture
def sip_user(server: RunningServer) -> tuple[RunningServer, str]:
    """A user whose SIP password was set through the users API."""
    acc = server.account()
    r = server.client.put(
        f"/account/{acc.account_id}/user/{acc.user_id}",
        headers=acc.headers,
        json={"sip_password": SIP_PASSWORD},
    )
    assert r.status_code == 200 and r.json()["response"]["has_sip_password"] is True
    return server, acc.user_id


@pytest.fixture
async def pbx(sip_user: tuple[RunningServer, str], tmp_path: Path) -> AsyncIterator[Pbx]:
    server, user_id = sip_user
    certs = Certificates.make(tmp_path / "pbx-certs")
    domain = server.settings.sip_domain
    async with open_database(server.settings.effective_database_url) as (_engine, sessions):
        registrar = Registrar(sessions, domain)
        desk = TransferDesk()
        sip = SipServer(
            desk.route,
            SipServerConfig(
                host="127.0.0.1",
                port=0,
                max_calls=20,
                tls_port=0,
                tls=TlsConfig.load(str(certs.cert), str(certs.key)),
            ),
            registrar=registrar,
        )
        await sip.start()
        desk.connector = Connector(sip, registrar=registrar, timeout=15)
        desk.target = TransferTarget("user", user_id)
        try:
            yield Pbx(sip, registrar, desk, user_id, domain)
        finally:
            await sip.stop()


async def test_api_keeps_only_the_ha1_of_the_sip_password(pbx: Pbx) -> None:
    async with pbx.registrar.sessions() as db:
        stored = await db.scalar(select(User.sip_password).where(User.user_id == pbx.user_id))
    assert stored == "md5:" + ha1(pbx.user_id, pbx.domain, SIP_PASSWORD)
    assert SIP_PASSWORD not in (stored or "")


async def register(
    pbx: Pbx, peer: RawPeer, *, password: str, expires: str, contact: str | None = None
) -> SipResponse:
    """One REGISTER with the digest dance, from a raw UDP peer."""
    port = pbx.server.udp_port
    dialogue = Dialogue(peer.port, user=pbx.user_id)
    contact_header = contact or f"<sip:{pbx.user_id}@127.0.0.1:{peer.port}>"
    extra = f"Contact: {contact_header}\r\nExpires: {expires}\r\n"
    first = dialogue.request("REGISTER", extra=extra).replace(
        f"Contact: <sip:alice@127.0.0.1:{peer.port}>\r\n", ""
    )
    peer.send(port, first)
    challenge = await peer.response(401)
    value = challenge.headers.get("WWW-Authenticate") or ""
    answer = Challenge.parse(value).answer(
        "REGISTER", f"sip:{pbx.user_id}@127.0.0.1", pbx.user_id, password
    )
    dialogue.cseq += 1
    dialogue.branch = dialogue.branch + "x"
    second = dialogue.request("REGISTER", extra=f"{extra}Authorization: {answer}\r\n")
    peer.send(port, second.replace(f"Contact: <sip:alice@127.0.0.1:{peer.port}>\r\n", ""))
    return await peer.response()


async def test_register_expiry_removal_and_wrong_password(pbx: Pbx) -> None:
    peer = await RawPeer.open()
    try:
        wrong = await register(pbx, peer, password="nope", expires="600")
        assert wrong.status == 403
        assert await pbx.registrar.contacts(pbx.user_id) == []
        brief = await register(pbx, peer, password=SIP_PASSWORD, expires="10")
        assert brief.status == 423 and brief.headers.get("Min-Expires") == "60"
        ok = await register(pbx, peer, password=SIP_PASSWORD, expires="99999")
        assert ok.status == 200
        [contact] = ok.headers.get_all("Contact")
        assert contact.endswith(";expires=3600")  # bounded to the maximum
        second = f"<sip:{pbx.user_id}@127.0.0.1:5999>"
        ok = await register(pbx, peer, password=SIP_PASSWORD, expires="120", contact=second)
        assert len(ok.headers.get_all("Contact")) == 2  # two devices for one user
        assert len(await pbx.registrar.contacts(pbx.user_id)) == 2
        gone = await register(pbx, peer, password=SIP_PASSWORD, expires="0", contact=second)
        assert gone.status == 200
        assert await pbx.registrar.contacts(pbx.user_id) == [
            f"sip:{pbx.user_id}@127.0.0.1:{peer.port}"
        ]
        everything = await register(pbx, peer, password=SIP_PASSWORD, expires="0", contact="*")
        assert everything.status == 200
        assert await pbx.registrar.contacts(pbx.user_id) == []
    finally:
        peer.close()


async def test_without_a_registrar_register_is_refused(tmp_path: Path) -> None:
    desk = TransferDesk()
    async with SipServer(desk.route, SipServerConfig(host="127.0.0.1", port=0)) as sip:
        peer = await RawPeer.open()
        try:
            peer.send(sip.udp_port, Dialogue(peer.port).request("REGISTER"))
            assert (await peer.response()).status == 405
        finally:
            peer.close()


async def start_baresip(
    pbx: Pbx, tmp_path: Path, name: str, transport: str = "udp"
) -> asyncio.subprocess.Process:
    """A baresip phone that registers as the user (over `transport`) and answers calls itself."""
    baresip = need_binary("baresip")
    home = tmp_path / name
    home.mkdir()
    port = pbx.server.tls_port if transport == "tls" else pbx.server.udp_port
    with wave.open(str(home / "voice.wav"), "wb") as out:  # the phone's user "speaks" 600 Hz
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(tones.beep(600.0, 20000, -12.0).astype("<i2").tobytes())
    (home / "accounts").write_text(
        f"<sip:{pbx.user_id}@{pbx.domain}>;auth_pass={SIP_PASSWORD};"
        f'outbound="sip:127.0.0.1:{port};transport={transport}";'
        f"regint=600;answermode=auto{';mediaenc=srtp-mand' if transport == 'tls' else ''}\n"
    )
    (home / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                "sip_listen 127.0.0.1:0",
                "module_path /usr/lib/baresip/modules",
                "module g711.so",
                "module aufile.so",
                "module srtp.so",
                "module_app account.so",
                "module_app menu.so",
                f"audio_source aufile,{home / 'voice.wav'}",
                "audio_player aufile,/dev/null",
                "audio_alert aufile,/dev/null",
                "",
            ]
        )
    )
    return await asyncio.create_subprocess_exec(
        baresip,
        "-4",
        "-n",
        "127.0.0.1",
        "-f",
        str(home),
        "-t",
        "40",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=home,
    )


async def wait_for_contacts(pbx: Pbx, count: int, proc: asyncio.subprocess.Process) -> None:
    for _ in range(250):
        if len(await pbx.registrar.contacts(pbx.user_id)) >= count:
            return
        await asyncio.sleep(0.04)
    proc.terminate()
    out, _ = await proc.communicate()
    pytest.fail(f"the phone did not register:\n{out.decode()[-2000:]}")


async def call_in(pbx: Pbx, tmp_path: Path, hold_ms: str) -> None:
    caller = await start_sipp(
        "transfer_caller_bye.xml",
        tmp_path,
        remote=f"127.0.0.1:{pbx.server.udp_port}",
        values={"audio_pcap": pcap("g711a.pcap"), "hold_ms": hold_ms},
    )
    try:
        await caller.finish()
        await asyncio.wait_for(pbx.desk.done.wait(), 10)
    finally:
        caller.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_a_registered_baresip_is_rung_and_bridged(
    pbx: Pbx, tmp_path: Path, transport: str
) -> None:
    phone = await start_baresip(pbx, tmp_path, "phone", transport)
    try:
        await wait_for_contacts(pbx, 1, phone)
        [binding] = await pbx.registrar.bindings(pbx.user_id)
        # Over TCP and TLS the call goes back over the connection the phone registered on.
        assert binding.transport == transport.upper()
        contact = binding.contact
        await call_in(pbx, tmp_path, "3000")
    finally:
        phone.terminate()
        out, _ = await phone.communicate()
    [leg] = pbx.desk.legs
    assert leg.status == "answered" and leg.ended_by == "caller", out.decode()[-3000:]
    assert leg.uri == contact
    # A phone that registered over TLS gets SRTP (this one takes nothing else).
    assert leg.media == ("SRTP" if transport == "tls" else "RTP")
    # The caller's audio reached the phone and the phone's tone came back.
    assert leg.packets_to_target > 50 and leg.packets_from_target > 50


async def test_two_devices_ring_in_parallel_first_wins_other_is_cancelled(
    pbx: Pbx, tmp_path: Path
) -> None:
    # Device 1: SIPp registers from a port, then rings on that same port until CANCEL.
    registering = await start_sipp(
        "register.xml",
        tmp_path,
        remote=f"127.0.0.1:{pbx.server.udp_port}",
        service=pbx.user_id,
        values={"domain": pbx.domain},
        extra=("-au", pbx.user_id, "-ap", SIP_PASSWORD),
    )
    await registering.finish()
    ringer = await start_sipp(
        "callee_rings.xml",
        tmp_path,
        values={"ruri_user": pbx.user_id, "from_user": r"\+46700000001"},
        port=registering.port,
    )
    # Device 2: baresip, which answers at once.
    phone = await start_baresip(pbx, tmp_path, "phone")
    try:
        await wait_for_contacts(pbx, 2, phone)
        await call_in(pbx, tmp_path, "2000")
        await ringer.finish()  # the losing device got CANCEL (and our ACK for its 487)
    finally:
        ringer.stop()
        phone.terminate()
        await phone.communicate()
    [leg] = pbx.desk.legs
    assert leg.status == "answered"
    assert leg.uri != f"sip:{pbx.user_id}@127.0.0.1:{registering.port}"
    # baresip unregistered (Expires: 0) when it quit; the SIPp device is still bound.
    async with pbx.registrar.sessions() as db:
        rows = (await db.scalars(select(Registration))).all()
    assert [r.contact for r in rows] == [f"sip:{pbx.user_id}@127.0.0.1:{registering.port}"]
