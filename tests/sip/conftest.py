"""Shared pieces for the SIP tests: a demo IVR handler, a server fixture and a raw SIP peer."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pytest

from openivr.audio import tones
from openivr.sip.call import AudioRecorded, Dtmf, HungUp, MediaCall, MediaCallEvent, SipCallRecord
from openivr.sip.message import SipRequest, SipResponse, new_branch, parse_message
from openivr.sip.server import Accept, Invite, Reject, SipServer, SipServerConfig


def need_binary(name: str) -> str:
    """Path of a peer binary; skip without it, but fail under CI where it must be installed."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required under CI but is not installed")
        pytest.skip(f"{name} is not installed")
    return path


@dataclass
class DemoIvr:
    """The handler the peer tests call: a 3 s tone; '1' hangs up; '2' records until '#'."""

    answer: bool = True
    ring_seconds: float = 0.0
    tone_seconds: float = 3.0
    calls: list[MediaCall] = field(default_factory=list)
    events: list[MediaCallEvent] = field(default_factory=list)
    recordings: list[AudioRecorded] = field(default_factory=list)
    records: list[SipCallRecord] = field(default_factory=list)
    invites: list[Invite] = field(default_factory=list)
    numbers: tuple[str, ...] = ("100", "ivr")
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def route(self, invite: Invite) -> Accept | Reject:
        self.invites.append(invite)
        if invite.route_key in self.numbers:
            return Accept(self.handle)
        return Reject(404, "No Such Number")

    async def handle(self, call: MediaCall) -> None:
        self.calls.append(call)
        await call.ring()
        if self.ring_seconds:
            await asyncio.sleep(self.ring_seconds)
        if not self.answer or call.ended:
            while not isinstance(await call.next_event(), HungUp):
                pass
            self.done.set()
            return
        await call.answer()
        call.play_pcm(tones.beep(440.0, self.tone_seconds * 1000, -12.0), barge_in=True)
        while True:
            event = await call.next_event()
            self.events.append(event)
            if isinstance(event, Dtmf) and event.key == "1":
                await call.hangup()
            elif isinstance(event, Dtmf) and event.key == "2":
                call.start_recording(max_seconds=20, max_silence=None, stop_keys="#")
            elif isinstance(event, AudioRecorded):
                self.recordings.append(event)
            elif isinstance(event, HungUp):
                break
        self.done.set()

    def keys(self) -> str:
        return "".join(e.key for e in self.events if isinstance(e, Dtmf))


ServerFactory = Callable[..., "asyncio.Future[SipServer]"]


@pytest.fixture
async def ivr() -> AsyncIterator[tuple[SipServer, DemoIvr]]:
    demo = DemoIvr()
    server = SipServer(
        demo.route,
        SipServerConfig(host="127.0.0.1", port=0, max_calls=50),
        on_call_end=demo.records.append,
    )
    await server.start()
    try:
        yield server, demo
    finally:
        await server.stop()


class RawPeer(asyncio.DatagramProtocol):
    """A scripted SIP phone over UDP for precise transaction tests."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[SipRequest | SipResponse] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    @classmethod
    async def open(cls, host: str = "127.0.0.1") -> RawPeer:
        """A peer on a free port of `host` (any 127.x.y.z: another source address)."""
        loop = asyncio.get_running_loop()
        peer = cls()
        await loop.create_datagram_endpoint(lambda: peer, local_addr=(host, 0))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.queue.put_nowait(parse_message(data))

    def send(self, server_port: int, data: str | bytes) -> None:
        assert self.transport is not None
        raw = data.encode() if isinstance(data, str) else data
        self.transport.sendto(raw, ("127.0.0.1", server_port))

    async def receive(self, timeout: float = 5.0) -> SipRequest | SipResponse:
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def response(self, status: int | None = None, timeout: float = 5.0) -> SipResponse:
        """The next response (skipping requests and, unless asked for, 1xx)."""
        while True:
            msg = await self.receive(timeout)
            if isinstance(msg, SipResponse) and (
                msg.status == status or (status is None and msg.status >= 200)
            ):
                return msg
            if isinstance(msg, SipResponse) and status is not None and msg.status >= 200:
                raise AssertionError(f"expected {status}, got {msg.status} {msg.reason}")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class Dialogue:
    """Builds requests of one call from the raw peer's side."""

    peer_port: int
    user: str = "100"
    call_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    cseq: int = 1
    remote_tag: str = ""
    branch: str = field(default_factory=new_branch)

    def request(
        self,
        method: str,
        *,
        body: str = "",
        content_type: str = "application/sdp",
        branch: str | None = None,
        cseq: int | None = None,
        in_dialog: bool = True,
        extra: str = "",
    ) -> str:
        to_tag = f";tag={self.remote_tag}" if in_dialog and self.remote_tag else ""
        number = cseq if cseq is not None else self.cseq
        ctype = f"Content-Type: {content_type}\r\n" if body else ""
        return (
            f"{method} sip:{self.user}@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.peer_port};branch={branch or self.branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f'From: "Alice" <sip:alice@127.0.0.1>;tag={self.tag}\r\n'
            f"To: <sip:{self.user}@127.0.0.1>{to_tag}\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {number} {method}\r\n"
            f"Contact: <sip:alice@127.0.0.1:{self.peer_port}>\r\n"
            f"{extra}{ctype}Content-Length: {len(body.encode())}\r\n\r\n{body}"
        )


def sdp_offer(rtp_port: int, formats: str = "0 8 101", direction: str = "sendrecv") -> str:
    return (
        "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP {formats}\r\n"
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
        f"a={direction}\r\n"
    )


def pcm_rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0
