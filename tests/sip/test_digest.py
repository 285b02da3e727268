"""Digest authentication: the RFC 2617 example, round trips, nonces and bad headers."""

from __future__ import annotations

import pytest

from openivr.sip.digest import (
    Challenge,
    Credentials,
    DigestError,
    NonceSource,
    ha1,
    stored_sip_password,
)

# RFC 2617 §3.5: Mufasa / "Circle Of Life" in realm testrealm@host.com.
RFC_AUTHORIZATION = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
    'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def test_rfc2617_example_verifies_against_the_stored_ha1() -> None:
    stored = stored_sip_password("Mufasa", "testrealm@host.com", "Circle Of Life")
    assert stored.startswith("md5:") and "Circle" not in stored
    credentials = Credentials.parse(RFC_AUTHORIZATION)
    assert credentials.verify("GET", stored)
    assert not credentials.verify("POST", stored)
    assert not credentials.verify("GET", stored_sip_password("Mufasa", "other", "Circle Of Life"))


@pytest.mark.parametrize("qop", ['qop="auth"', ""])
def test_our_answer_to_a_challenge_verifies(qop: str) -> None:
    header = f'Digest realm="trunk", nonce="abc123", opaque="xyz", {qop}'.rstrip(", ")
    challenge = Challenge.parse(header)
    answer = challenge.answer("INVITE", "sip:+4670@trunk", "openivr", "pw")
    credentials = Credentials.parse(answer)
    assert credentials.username == "openivr" and credentials.uri == "sip:+4670@trunk"
    assert credentials.verify("INVITE", ha1("openivr", "trunk", "pw"))
    assert not credentials.verify("INVITE", ha1("openivr", "trunk", "wrong"))
    assert 'opaque="xyz"' in answer


def test_nonces_are_ours_and_expire() -> None:
    source = NonceSource()
    nonce = source.issue()
    assert source.check(nonce) == "ok"
    assert source.check(nonce[:-1] + ("0" if nonce[-1] != "0" else "1")) == "bad"
    assert NonceSource().check(nonce) == "bad"  # another key (another process) did not issue it
    assert NonceSource(key=b"k", lifetime=-1).check(NonceSource(key=b"k").issue()) == "stale"
    assert "stale=true" in source.challenge("r", stale=True)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ('Basic realm="x"', "not Digest"),
        ('Digest realm="x"', "realm or nonce"),
        ('Digest realm="x", nonce="n", algorithm=SHA-512-256', "not supported"),
        ("Digest realm", "cannot read"),
    ],
)
def test_bad_challenges_are_named(header: str, problem: str) -> None:
    with pytest.raises(DigestError, match=problem):
        Challenge.parse(header)


def test_authorization_without_response_is_refused() -> None:
    with pytest.raises(DigestError, match="response"):
        Credentials.parse('Digest username="a", realm="r", nonce="n", uri="sip:x"')


def test_nodes_sharing_a_secret_accept_each_others_nonces() -> None:
    # Behind a load balancer the challenge and the answer may reach different nodes.
    node_a, node_b = NonceSource.shared(b"cluster-secret"), NonceSource.shared(b"cluster-secret")
    assert node_b.check(node_a.issue()) == "ok"
    assert NonceSource.shared(b"another-cluster").check(node_a.issue()) == "bad"
