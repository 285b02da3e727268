"""SIP message parsing and serialisation, including the odd forms real phones send."""

from __future__ import annotations

import pytest

from openivr.sip.message import (
    NameAddress,
    SipParseError,
    SipRequest,
    SipResponse,
    SipUri,
    bad_request,
    parse_message,
    response_to,
    route_key_of,
)

INVITE = (
    "INVITE sip:100@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-0, SIP/2.0/TCP h2;branch=z9hG4bK-x\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Alice" <sip:alice@127.0.0.1>;tag=abc\r\n'
    "To: <sip:100@127.0.0.1>\r\n"
    "Call-ID: call-1@127.0.0.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Subject: a long\r\n"
    " folded\r\n"
    "\tsubject\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 4\r\n"
    "\r\n"
    "v=0\r\n"
)


def test_request_parses_with_folded_headers_and_multiple_vias() -> None:
    msg = parse_message(INVITE.encode())
    assert isinstance(msg, SipRequest)
    assert msg.method == "INVITE"
    assert msg.headers.get("subject") == "a long folded subject"
    assert [v.branch for v in msg.vias] == ["z9hG4bK-1", "z9hG4bK-0", "z9hG4bK-x"]
    assert msg.vias[2].transport == "TCP"
    assert msg.from_.tag == "abc" and msg.from_.display == "Alice"
    assert msg.to.tag is None
    assert msg.body == b"v=0\r"  # Content-Length wins over trailing bytes on UDP
    assert route_key_of(msg) == "100"


def test_serialise_round_trip_keeps_everything() -> None:
    msg = parse_message(INVITE.encode())
    again = parse_message(msg.serialise())
    assert again == msg


def test_compact_forms_expand() -> None:
    raw = (
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
        "v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa\r\n"
        "f: <sip:bob@127.0.0.1>;tag=1\r\n"
        "t: sip:127.0.0.1\r\n"
        "i: xyz\r\n"
        "CSeq: 7 OPTIONS\r\n"
        "l: 0\r\n\r\n"
    )
    msg = parse_message(raw.encode())
    assert msg.call_id == "xyz"
    assert msg.headers.get("From") == "<sip:bob@127.0.0.1>;tag=1"
    assert "Call-ID: xyz" in msg.serialise().decode()
    # No user part in the R-URI: nothing to route on, To has none either.
    assert isinstance(msg, SipRequest) and route_key_of(msg) == ""


def test_route_key_falls_back_to_to_user() -> None:
    raw = INVITE.replace("INVITE sip:100@127.0.0.1:5060", "INVITE sip:127.0.0.1:5060")
    raw = raw.replace("To: <sip:100@", "To: <sip:200@")
    msg = parse_message(raw.encode())
    assert isinstance(msg, SipRequest) and route_key_of(msg) == "200"


def test_lf_only_line_endings_are_accepted() -> None:
    msg = parse_message(INVITE.replace("\r\n", "\n").encode())
    assert msg.call_id == "call-1@127.0.0.1"


def test_response_parses() -> None:
    raw = (
        "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        "From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n"
    )
    msg = parse_message(raw.encode())
    assert isinstance(msg, SipResponse)
    assert (msg.status, msg.reason, msg.to.tag) == (180, "Ringing", "2")


@pytest.mark.parametrize(
    ("mutation", "problem"),
    [
        (lambda s: s.replace("Call-ID: call-1@127.0.0.1\r\n", ""), "Call-ID"),
        (lambda s: s.replace("CSeq: 1 INVITE", "CSeq: one INVITE"), "CSeq"),
        (lambda s: s.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"), "CSeq method"),
        (lambda s: s.replace("Content-Length: 4", "Content-Length: 400"), "Content-Length"),
        (lambda s: s.replace("SIP/2.0\r\nVia", "SIP/3.0\r\nVia"), "version"),
        (lambda s: s.replace("sip:100@127.0.0.1:5060", "http://x"), "scheme"),
        (lambda s: s.replace("127.0.0.1:5070", "127.0.0.1:99999"), "port"),
        (lambda s: s.replace("\r\n\r\n", "\r\n"), "blank line"),
        (lambda s: s.replace("Max-Forwards: 70", "Max Forwards 70"), "header line"),
    ],
)
def test_malformed_messages_name_the_problem(mutation: object, problem: str) -> None:
    raw = mutation(INVITE)  # type: ignore[operator]
    with pytest.raises(SipParseError, match=problem):
        parse_message(raw.encode())


def test_non_utf8_headers_are_rejected() -> None:
    with pytest.raises(SipParseError, match="UTF-8"):
        parse_message(INVITE.encode().replace(b"Alice", b"\xff\xfe"))


def test_bad_request_answers_when_addressable_and_drops_otherwise() -> None:
    broken = INVITE.replace("Content-Length: 4", "Content-Length: four")
    reply = bad_request(broken.encode(), "Content-Length 'four' is not a number")
    assert reply is not None
    parsed = parse_message(reply)
    assert isinstance(parsed, SipResponse) and parsed.status == 400
    assert "Content-Length" in parsed.reason
    assert parsed.call_id == "call-1@127.0.0.1"
    assert bad_request(b"\x00\x01garbage", "x") is None
    assert bad_request(INVITE.replace("INVITE sip", "ACK sip").encode(), "x") is None


def test_response_to_copies_transaction_headers_and_adds_tag() -> None:
    msg = parse_message(INVITE.encode())
    assert isinstance(msg, SipRequest)
    resp = response_to(msg, 486, to_tag="t1")
    assert resp.reason == "Busy Here"
    assert resp.to.tag == "t1"
    assert len(resp.vias) == 3
    assert response_to(msg, 100, to_tag="t1").to.tag is None


def test_uri_and_address_forms() -> None:
    uri = SipUri.parse("sip:+4930123:secret@[::1]:5062;user=phone")
    assert (uri.user, uri.host, uri.port, uri.params["user"]) == ("+4930123", "::1", 5062, "phone")
    assert SipUri.parse("tel:+123;phone-context=x").user == "+123"
    addr = NameAddress.parse("sip:bob@h;tag=9")
    assert (addr.uri, addr.tag, addr.user()) == ("sip:bob@h", "9", "bob")
    with pytest.raises(SipParseError):
        NameAddress.parse('"x" <sip:a@h')
