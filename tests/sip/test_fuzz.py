"""Robustness: thousands of mutated and truncated SIP messages must not break the server."""

from __future__ import annotations

import asyncio
import logging
import random
import socket

import pytest

from openivr.sip.server import SipServer, SipServerConfig

from .conftest import DemoIvr, Dialogue, RawPeer, sdp_offer

MESSAGES = 10_000
SEED = 20240611


def seeds(port: int) -> list[bytes]:
    d = Dialogue(port)
    d.remote_tag = "abc"
    base = [
        d.request("INVITE", body=sdp_offer(40000), in_dialog=False),
        d.request("INVITE", body=sdp_offer(40000, "0", "sendonly")),
        d.request("OPTIONS", in_dialog=False),
        d.request("BYE"),
        d.request("ACK"),
        d.request("CANCEL", in_dialog=False),
        d.request(
            "INFO", body="Signal=5\r\nDuration=160\r\n", content_type="application/dtmf-relay"
        ),
        d.request("UPDATE", body=sdp_offer(40000)),
        d.request("REGISTER", in_dialog=False),
        (
            "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\nf: <sip:a@b>;tag=1\r\n"
            "t: <sip:c@d>;tag=2\r\ni: x\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n"
        ),
    ]
    return [m.encode() for m in base]


TOKENS = [
    b"\r\n",
    b"\n",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"<",
    b">",
    b'"',
    b"@",
    b"=",
    b"\x00",
    b"\xff",
    b"SIP/2.0",
    b"Content-Length: 99999",
    b"CSeq: -1 INVITE",
    b"Via: ",
    b"m=audio 0 RTP/AVP",
    b"%",
    b"[::1]",
    b"sip:",
    b"z9hG4bK",
    b"\r\n ",
    b"l: 10\r\n",
    b"c=IN IP4 \r\n",
    b"a=rtpmap:",
]


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        pos = rng.randrange(len(out) + 1)
        if choice < 0.25 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif choice < 0.45:
            out[pos:pos] = rng.choice(TOKENS)
        elif choice < 0.6 and out:
            end = min(len(out), pos + rng.randint(1, 40))
            del out[pos:end]
        elif choice < 0.7:
            out = out[: rng.randrange(len(out) + 1)]  # truncation
        elif choice < 0.8:
            lines = bytes(out).split(b"\r\n")
            rng.shuffle(lines)
            out = bytearray(b"\r\n".join(lines))
        elif choice < 0.9 and out:
            start = rng.randrange(len(out))
            out[pos:pos] = out[start : start + rng.randint(1, 200)] * rng.randint(1, 5)
        else:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 30)))
    return bytes(out[:65000])


async def test_mutated_messages_do_not_break_the_server(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="openivr.sip")
    demo = DemoIvr(numbers=("after-fuzz",))
    server = SipServer(demo.route, SipServerConfig(port=0, max_calls=1000))
    async with server:
        rng = random.Random(SEED)
        blaster = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        blaster.bind(("127.0.0.1", 0))
        blaster.setblocking(False)
        base = seeds(blaster.getsockname()[1])
        sent = 0
        for i in range(MESSAGES - 500):
            try:
                blaster.sendto(mutate(rng, rng.choice(base)), ("127.0.0.1", server.udp_port))
                sent += 1
            except (BlockingIOError, OSError):
                pass
            if i % 20 == 0:
                await asyncio.sleep(0)  # let the server drain its socket
                try:
                    while blaster.recv(65535):
                        pass
                except (BlockingIOError, OSError):
                    pass
        # And over TCP, where a bad frame may make the server close the connection.
        tcp_sent = 0
        writer: asyncio.StreamWriter | None = None
        for _ in range(500):
            if writer is None or writer.is_closing():
                _, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
            writer.write(mutate(rng, rng.choice(base)))
            tcp_sent += 1
            try:
                await asyncio.wait_for(writer.drain(), 1)
            except (ConnectionError, TimeoutError):
                writer = None
            await asyncio.sleep(0)
        if writer is not None:
            writer.close()
        blaster.close()
        assert sent + tcp_sent >= MESSAGES - 100
        assert server.malformed > 1000  # most mutations really were broken

        # A normal call still works afterwards.
        peer = await RawPeer.open()
        d = Dialogue(peer.port, user="after-fuzz")
        peer.send(server.udp_port, d.request("INVITE", body=sdp_offer(40002)))
        ok = await peer.response(200, timeout=10)
        d.remote_tag = ok.to.tag or ""
        peer.send(server.udp_port, d.request("ACK", branch=d.branch + "a"))
        d.cseq += 1
        peer.send(server.udp_port, d.request("BYE", branch=d.branch + "b"))
        await peer.response(200)
        await asyncio.wait_for(demo.done.wait(), 5)
        peer.close()
    crashes = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not crashes, crashes[0].getMessage() + str(crashes[0].exc_info)
