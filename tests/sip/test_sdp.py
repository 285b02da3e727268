"""SDP offer/answer: codec choice, telephone-event, 488 and hold."""

from __future__ import annotations

import pytest

from openivr.sip.sdp import (
    LocalSession,
    NoCommonCodec,
    SdpError,
    SessionDescription,
    negotiate,
)


def offer(formats: str, extra: str = "", conn: str = "c=IN IP4 127.0.0.1\r\n") -> bytes:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n" + conn + "t=0 0\r\n"
        f"m=audio 40000 RTP/AVP {formats}\r\n" + extra
    ).encode()


def test_first_offered_supported_codec_wins() -> None:
    sdp = offer("18 8 0 96", "a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n")
    agreement = negotiate(SessionDescription.parse(sdp))
    assert agreement.codec == "PCMA" and agreement.payload_type == 8
    assert agreement.event_payload_type == 96
    assert (agreement.remote_address, agreement.remote_port) == ("127.0.0.1", 40000)


def test_dynamic_pcmu_and_no_telephone_event() -> None:
    agreement = negotiate(SessionDescription.parse(offer("97", "a=rtpmap:97 PCMU/8000\r\n")))
    assert (agreement.codec, agreement.payload_type, agreement.event_payload_type) == (
        "PCMU",
        97,
        None,
    )


def test_no_shared_codec_raises_for_488() -> None:
    with pytest.raises(NoCommonCodec, match="PCMU or PCMA"):
        negotiate(SessionDescription.parse(offer("9 18", "a=rtpmap:9 G722/8000\r\n")))


def test_missing_connection_and_garbage_are_errors() -> None:
    with pytest.raises(SdpError):
        negotiate(SessionDescription.parse(offer("0", conn="")))
    with pytest.raises(SdpError, match="m= line"):
        SessionDescription.parse(b"v=0\r\n")
    with pytest.raises(SdpError):
        SessionDescription.parse(b"hello world")


def test_hold_offer_is_answered_recvonly() -> None:
    agreement = negotiate(SessionDescription.parse(offer("0", "a=sendonly\r\n")))
    assert agreement.direction == "recvonly"


def test_answer_mirrors_payload_types_and_parses_back() -> None:
    sdp = offer("0 101", "a=rtpmap:101 telephone-event/8000\r\n")
    agreement = negotiate(SessionDescription.parse(sdp))
    local = LocalSession("127.0.0.1", 20002)
    answer = SessionDescription.parse(local.answer(agreement))
    audio = answer.audio()
    assert audio is not None
    assert audio.port == 20002 and audio.formats == [0, 101]
    assert audio.rtpmap[101] == "telephone-event/8000"
    second = SessionDescription.parse(local.answer(agreement))
    assert int(second.origin.split()[2]) > int(answer.origin.split()[2])


@pytest.mark.parametrize(
    ("extra", "conn", "may_send"),
    [
        ("a=sendrecv\r\n", "c=IN IP4 127.0.0.1\r\n", True),
        ("a=recvonly\r\n", "c=IN IP4 127.0.0.1\r\n", True),  # it only listens: it hears us
        ("a=sendonly\r\n", "c=IN IP4 127.0.0.1\r\n", False),  # hold (RFC 3264 §8.4)
        ("a=inactive\r\n", "c=IN IP4 127.0.0.1\r\n", False),
        ("", "c=IN IP4 0.0.0.0\r\n", False),  # hold the RFC 2543 way
    ],
)
def test_we_send_audio_only_to_a_side_that_wants_to_hear_it(
    extra: str, conn: str, may_send: bool
) -> None:
    agreement = negotiate(SessionDescription.parse(offer("0", extra, conn)))
    assert agreement.may_send is may_send
