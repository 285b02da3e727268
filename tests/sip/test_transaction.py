"""Transactions without sockets or waiting: a manual clock, peers that record what was sent."""

from __future__ import annotations

import itertools

import pytest

from openivr.sip.message import SipRequest, SipResponse, parse_message
from openivr.sip.transaction import (
    T2,
    T4,
    TIMEOUT,
    TIMER_D,
    ClientTransaction,
    InviteClientTransaction,
    Retransmitter,
    ServerTransaction,
    TransactionTable,
    server_key,
)

from .manual_clock import ManualClock, RecordingPeer, reply, request


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# The retransmitter --------------------------------------------------------------------------


def test_resends_double_from_t1_and_stop_growing_at_t2(clock: ManualClock) -> None:
    peer = RecordingPeer(clock)
    Retransmitter(peer, b"BYE", clock).start()
    clock.advance(20)
    # 0.5, 1, 2, 4, then 4 s apart (RFC 3261 timer E / G / 2xx).
    assert peer.times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5]
    assert [data for _, data in peer.sent] == [b"BYE"] * 7


def test_an_invite_keeps_doubling_past_t2(clock: ManualClock) -> None:
    peer = RecordingPeer(clock)
    Retransmitter(peer, b"INVITE", clock, capped=False).start()
    clock.advance(32)
    assert peer.times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # timer A


def test_nothing_is_resent_over_a_reliable_transport(clock: ManualClock) -> None:
    peer = RecordingPeer(clock, name="TCP")
    resend = Retransmitter(peer, b"BYE", clock)
    resend.start()
    clock.advance(60)
    assert peer.sent == [] and not resend.running


def test_a_stopped_retransmitter_sends_no_more(clock: ManualClock) -> None:
    peer = RecordingPeer(clock)
    resend = Retransmitter(peer, b"BYE", clock)
    resend.start()
    clock.advance(2)
    resend.stop()
    clock.advance(60)
    assert peer.times == [0.5, 1.5] and clock.pending == 0


# Our requests -------------------------------------------------------------------------------


async def test_a_request_of_ours_is_resent_until_its_final_response(clock: ManualClock) -> None:
    table = TransactionTable(clock)
    peer = RecordingPeer(clock)
    bye = request("BYE", "z9hG4bK-ours")
    tx = ClientTransaction(table, "z9hG4bK-ours", bye.serialise(), peer, "BYE")
    tx.start()
    assert table.requests_in_flight == 1
    clock.advance(1.6)
    assert len(peer.sent) == 3  # sent, then resent at T1 and 2·T1
    matched = table.matching(reply(bye, 100))
    assert matched is tx
    tx.receive(reply(bye, 100))
    assert not tx.done.done()  # a provisional response ends nothing
    tx.receive(reply(bye, 200))
    assert tx.done.result() == 200 and tx.final_status == 200
    assert table.requests_in_flight == 0 and table.matching(reply(bye, 200)) is None
    clock.advance(60)
    assert len(peer.sent) == 3 and clock.pending == 0


async def test_a_request_nobody_answers_ends_with_408_at_timer_f(clock: ManualClock) -> None:
    table = TransactionTable(clock)
    peer = RecordingPeer(clock)
    tx = ClientTransaction(table, "z9hG4bK-x", b"BYE", peer, "BYE")
    tx.start()
    clock.advance(TIMEOUT - 0.01)
    assert not tx.done.done()
    clock.advance(0.02)
    assert tx.done.result() == 408 and table.requests_in_flight == 0
    # E fired at 0.5, 1.5, 3.5, 7.5, then every T2 up to 32 s.
    assert peer.times[:5] == [0.0, 0.5, 1.5, 3.5, 7.5]
    assert all(b - a == T2 for a, b in itertools.pairwise(peer.times[4:]))


async def test_responses_find_their_request_by_branch_and_method(clock: ManualClock) -> None:
    table = TransactionTable(clock)
    peer = RecordingPeer(clock)
    invite = request("INVITE", "z9hG4bK-inv")
    heard: list[SipResponse | None] = []
    inv = InviteClientTransaction(table, "z9hG4bK-inv", invite, peer, heard.append)
    inv.start()
    # A CANCEL shares the INVITE's branch; its 200 must not end the INVITE.
    cancel = inv.cancel_request()
    assert cancel.vias[0].branch == "z9hG4bK-inv" and cancel.cseq.method == "CANCEL"
    ctx = ClientTransaction(table, "z9hG4bK-inv", cancel.serialise(), peer, "CANCEL")
    ctx.start()
    assert table.matching(reply(cancel, 200)) is ctx
    assert table.matching(reply(invite, 487)) is inv
    assert table.matching(reply(request("INVITE", "z9hG4bK-other"), 200)) is None


async def test_stopping_ends_every_transaction(clock: ManualClock) -> None:
    table = TransactionTable(clock)
    peer = RecordingPeer(clock)
    tx = ClientTransaction(table, "z9hG4bK-b", b"BYE", peer, "BYE")
    tx.start()
    incoming = ServerTransaction(
        table, server_key(request("OPTIONS"), "OPTIONS"), request("OPTIONS"), peer
    )
    table.close()
    assert tx.done.result() == 0
    assert table.requests_in_flight == 0 and table.server(incoming.key) is None
    clock.advance(60)
    assert len(peer.sent) == 1


# Our INVITEs --------------------------------------------------------------------------------


async def test_an_invite_is_resent_until_any_response(clock: ManualClock) -> None:
    table = TransactionTable(clock)
    peer = RecordingPeer(clock)
    invite = request("INVITE", "z9hG4bK-inv")
    heard: list[SipResponse | None] = []
    tx = InviteClientTransaction(table, "z9hG4bK-inv", invite, peer, heard.append)
    tx.start()
    clock.advance(4)
    assert peer.times == [0.0, 0.5, 1.5, 3.5]
    tx.receive(reply(invite, 180))
    clock.advance(120)  # ringing: no resends, and timer B no longer runs
    assert len(peer.sent) == 4 and [r.status for r in heard if r] == [180]
    tx.receive(reply(invite, 200))
    assert [r.status for r in heard if r] == [180, 200]
    assert table.requests_in_flight == 0  # the dialog ACKs a 2xx, not the transaction


async def test_an_unanswered_invite_reports_none_at_timer_b(clock: ManualClock) -> None:
    table = TransactionTable(clock)
    peer = RecordingPeer(clock)
    heard: list[SipResponse | None] = []
    tx = InviteClientTransaction(
        table, "z9hG4bK-inv", request("INVITE", "z9hG4bK-inv"), peer, heard.append
    )
    tx.start()
    clock.advance(TIMEOUT + 0.1)
    assert heard == [None] and table.requests_in_flight == 0
    assert peer.times == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]


async def test_an_error_to_our_invite_is_acked_each_time_and_told_once(clock: ManualClock) -> None:
    table = TransactionTable(clock)
    peer = RecordingPeer(clock)
    invite = request("INVITE", "z9hG4bK-inv", "Route: <sip:lb.example.invalid;lr>\r\n")
    heard: list[SipResponse | None] = []
    tx = InviteClientTransaction(table, "z9hG4bK-inv", invite, peer, heard.append)
    tx.start()
    busy = reply(invite, 486)
    tx.receive(busy)
    tx.receive(busy)  # the far end did not get our ACK and resent its 486
    assert [r.status for r in heard if r] == [486]
    acks = [parse_message(data) for _, data in peer.sent[1:]]
    assert len(acks) == 2
    for ack in acks:
        assert isinstance(ack, SipRequest) and ack.method == "ACK"
        assert ack.vias[0].branch == "z9hG4bK-inv" and ack.to.tag == "b2"
        assert ack.headers.get_all("Route") == ["<sip:lb.example.invalid;lr>"]
    clock.advance(TIMER_D - 0.1)
    assert table.requests_in_flight == 1  # lingers for timer D to ACK retransmissions
    clock.advance(0.2)
    assert table.requests_in_flight == 0


# The far end's requests ---------------------------------------------------------------------


def test_the_far_ends_transactions_are_keyed_by_branch_or_by_dialog_for_old_peers() -> None:
    modern = request("INVITE", "z9hG4bK-abc")
    assert server_key(modern, "INVITE") == ("z9hG4bK-abc", "192.0.2.7:5060", "INVITE")
    old = request("INVITE", "1234")  # RFC 2543: no magic cookie
    assert server_key(old, "INVITE") == ("call-1", "a1", "7", "INVITE")
    # ACK and CANCEL name the INVITE's transaction when asked with method INVITE.
    assert server_key(request("ACK", "z9hG4bK-abc"), "INVITE") == server_key(modern, "INVITE")


def test_a_retransmitted_request_gets_our_last_response_again(clock: ManualClock) -> None:
    table = TransactionTable(clock)
    peer = RecordingPeer(clock)
    options = request("OPTIONS")
    tx = ServerTransaction(table, server_key(options, "OPTIONS"), options, peer)
    assert table.server(tx.key) is tx
    tx.respond(reply(options, 200))
    tx.respond(reply(options, 500))  # one final response only
    tx.resend()
    assert [parse_message(d).status for _, d in peer.sent] == [200, 200]  # type: ignore[union-attr]
    clock.advance(TIMEOUT - 0.1)
    assert table.server(tx.key) is tx and len(peer.sent) == 2  # J: absorbs, never resends
    clock.advance(0.2)
    assert table.server(tx.key) is None


def test_an_error_to_an_invite_is_resent_until_the_ack(clock: ManualClock) -> None:
    table = TransactionTable(clock)
    peer = RecordingPeer(clock)
    invite = request("INVITE")
    tx = ServerTransaction(table, server_key(invite, "INVITE"), invite, peer)
    tx.respond(reply(invite, 100))
    tx.respond(reply(invite, 404))
    clock.advance(2)
    assert peer.times == [0.0, 0.0, 0.5, 1.5]  # 100, 404, then timer G
    tx.acked()
    clock.advance(T4 - 0.1)
    assert len(peer.sent) == 4 and table.server(tx.key) is tx  # timer I
    clock.advance(0.2)
    assert table.server(tx.key) is None


def test_a_2xx_is_not_resent_by_the_transaction(clock: ManualClock) -> None:
    # Our 2xx to an INVITE is the dialog's to resend (RFC 3261 §13.3.1.4).
    table = TransactionTable(clock)
    peer = RecordingPeer(clock)
    invite = request("INVITE")
    ServerTransaction(table, server_key(invite, "INVITE"), invite, peer).respond(reply(invite, 200))
    clock.advance(10)
    assert len(peer.sent) == 1


def test_a_forgotten_transaction_leaves_a_newer_one_under_its_key(clock: ManualClock) -> None:
    table = TransactionTable(clock)
    peer = RecordingPeer(clock)
    options = request("OPTIONS")
    first = ServerTransaction(table, server_key(options, "OPTIONS"), options, peer)
    second = ServerTransaction(table, first.key, options, peer)
    first.terminate()
    assert table.server(first.key) is second
    table.forget(second)
    assert table.server(first.key) is None
