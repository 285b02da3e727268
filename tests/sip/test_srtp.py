"""SDES keys, the --srtp rules and SRTP on a media socket (libsrtp underneath)."""

from __future__ import annotations

import socket
import time

import pytest

from openivr.sip.rtp import RtpPacket
from openivr.sip.sdp import LocalSession, SessionDescription, negotiate
from openivr.sip.srtp import SdesKey, SrtpRefused, SrtpSocket, agree, parse_mode

KEY = "c1TMwjTP9+0I2lp89q1MT7n5iY8vM6+odCnLr/7J"


def test_crypto_lines_we_can_and_cannot_use() -> None:
    key = SdesKey.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")
    assert key is not None and key.tag == 1 and len(key.key) == 30
    assert SdesKey.parse(f"2 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^31") is not None
    for unusable in (
        f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY}",  # another suite
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4",  # an MKI
        "1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=",  # too short a key
        "1 AES_CM_128_HMAC_SHA1_80 inline:***",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP",
    ):
        assert SdesKey.parse(unusable) is None, unusable
    ours = SdesKey.new()
    assert SdesKey.parse(ours.attribute().removeprefix("a=crypto:")) == ours


def test_the_srtp_setting_decides_what_is_answered() -> None:
    key = SdesKey.new()
    assert agree("RTP/SAVP", key, "offer", True) == key
    assert agree("RTP/AVP", key, "offer", True) == key  # proposed in RTP/AVP: taken
    assert agree("RTP/AVP", key, "offer", False) is None  # a key over UDP: answered plain
    assert agree("RTP/AVP", key, "off", True) is None
    assert agree("RTP/AVP", None, "offer", True) is None
    for profile, offered, mode, tls, says in (
        ("RTP/SAVP", key, "off", True, "SRTP is off"),
        ("RTP/SAVP", key, "offer", False, "over TLS only"),
        ("RTP/SAVP", None, "offer", True, "no a=crypto"),
        ("RTP/AVP", None, "require", True, "requires SRTP"),
        ("RTP/AVP", key, "require", False, "over TLS only"),
    ):
        with pytest.raises(SrtpRefused, match=says):
            agree(profile, offered, mode, tls)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--srtp: 'maybe' is not one of off, offer, require"):
        parse_mode("maybe")


def test_our_answer_gives_our_key_under_the_offers_tag_and_profile() -> None:
    offer = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
        "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:" + KEY + "\r\n"
        "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:" + KEY + "\r\n"
    )
    agreement = negotiate(SessionDescription.parse(offer))
    assert agreement.profile == "RTP/SAVP" and agreement.srtp is not None
    assert agreement.srtp.tag == 7
    ours = SdesKey.new()
    answer = SessionDescription.parse(LocalSession("127.0.0.1", 5000, key=ours).answer(agreement))
    audio = answer.audio()
    assert audio is not None and audio.proto == "RTP/SAVP"
    assert audio.crypto == [ours.attribute(tag=7).removeprefix("a=crypto:")]
    local = LocalSession("127.0.0.1", 5000, key=ours)
    for mode, profile in (("offer", "RTP/AVP"), ("require", "RTP/SAVP")):
        offered = SessionDescription.parse(local.offer(srtp=mode)).audio()  # type: ignore[arg-type]
        assert offered is not None and offered.proto == profile and len(offered.crypto) == 1
    plain = SessionDescription.parse(local.offer()).audio()
    assert plain is not None and plain.crypto == [] and plain.proto == "RTP/AVP"


def test_an_srtp_socket_sends_encrypted_and_drops_what_does_not_authenticate() -> None:
    a_key, b_key = SdesKey.new(), SdesKey.new()
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    fd = b.fileno()
    secure_a, secure_b = SrtpSocket.around(a, a_key, b_key), SrtpSocket.around(b, b_key, a_key)
    assert secure_b.fileno() == fd  # the same file: whoever watched it goes on watching
    packet = RtpPacket(0, 1, 160, 42, b"\x55" * 160).serialise()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as eavesdropper:
        eavesdropper.bind(("127.0.0.1", 0))
        secure_a.sendto(packet, eavesdropper.getsockname())
        on_the_wire = eavesdropper.recv(2048)
        assert on_the_wire != packet and b"\x55" * 16 not in on_the_wire
        eavesdropper.sendto(packet, secure_b.getsockname())  # plain RTP: refused
        eavesdropper.sendto(on_the_wire, secure_b.getsockname())  # relayed: still A's
        eavesdropper.sendto(on_the_wire, secure_b.getsockname())  # a replay: refused
        time.sleep(0.05)
    data, _ = secure_b.recvfrom(2048)
    assert RtpPacket.parse(data).payload == b"\x55" * 160
    with pytest.raises(BlockingIOError):
        secure_b.recvfrom(2048)
    assert secure_b.rejected == 2
    secure_a.close()
    secure_b.close()
