"""The dialog of a call we answer, and the dialog table, without sockets or waiting."""

from __future__ import annotations

from openivr.sip.dialog import DialogTable, IncomingDialog, UserAgentCore
from openivr.sip.message import SipRequest, SipResponse, parse_message
from openivr.sip.sdp import LocalSession
from openivr.sip.transaction import TIMEOUT, ServerTransaction, TransactionTable, server_key
from openivr.sip.transport import Transports

from .manual_clock import ManualClock, RecordingPeer, request


def answered(clock: ManualClock) -> tuple[IncomingDialog, RecordingPeer, UserAgentCore]:
    core = UserAgentCore(
        transports=Transports(lambda data, peer, stream: None, host="192.0.2.1"),
        transactions=TransactionTable(clock),
        dialogs=DialogTable(clock),
        user_agent="OpenIVR",
    )
    core.transports.ports["UDP"] = 5060  # as if listening
    peer = RecordingPeer(clock)
    invite = request("INVITE", extra="Contact: <sip:alice@192.0.2.7:5060>\r\n")
    tx = ServerTransaction(core.transactions, server_key(invite, "INVITE"), invite, peer)
    dialog = IncomingDialog(core, invite, tx, peer, None)
    dialog.local_sdp = LocalSession("192.0.2.1", 40000)
    dialog.send_answer()
    return dialog, peer, core


def sent(peer: RecordingPeer) -> list[SipRequest | SipResponse]:
    return [parse_message(data) for _, data in peer.sent]


async def test_our_200_is_resent_until_the_ack() -> None:
    clock = ManualClock()
    dialog, peer, core = answered(clock)
    clock.advance(2)
    assert peer.times == [0.0, 0.5, 1.5]
    ok = sent(peer)[0]
    assert isinstance(ok, SipResponse) and ok.status == 200 and b"m=audio 40000" in ok.body
    ack = request("ACK", "z9hG4bK-ack")
    ack.headers.set("To", f"<sip:100@192.0.2.1>;tag={dialog.local_tag}")
    assert core.dialogs.incoming(ack) is dialog
    dialog.on_ack(ack)
    clock.advance(60)
    assert len(peer.sent) == 3 and core.dialogs.calls_in_progress == 1


async def test_no_ack_hangs_up_and_forgets_the_dialog() -> None:
    clock = ManualClock()
    dialog, peer, core = answered(clock)
    clock.advance(TIMEOUT + 0.1)
    bye = sent(peer)[-1]
    assert isinstance(bye, SipRequest) and bye.method == "BYE"
    assert bye.uri == "sip:alice@192.0.2.7:5060" and bye.from_.tag == dialog.local_tag
    assert bye.vias[0].host == "192.0.2.1"
    assert core.dialogs.calls_in_progress == 0
    assert core.transactions.requests_in_flight == 1  # the BYE waits for its 200


async def test_refer_names_the_target_and_us() -> None:
    clock = ManualClock()
    dialog, peer, core = answered(clock)
    done = dialog.send_refer("sip:bob@192.0.2.9")
    refer = sent(peer)[-1]
    assert isinstance(refer, SipRequest) and refer.method == "REFER"
    assert refer.headers.get("Refer-To") == "<sip:bob@192.0.2.9>"
    assert refer.headers.get("Referred-By") == dialog.contact == "<sip:openivr@192.0.2.1:5060>"
    assert not done.done()
    core.transactions.close()
    assert done.result() == 0


def test_a_dialog_can_be_forgotten_later() -> None:
    clock = ManualClock()
    table = DialogTable(clock)

    class Placed:
        key = ("call-9", "t9")

        def on_request(self, request: SipRequest, tx: ServerTransaction) -> None: ...

        def on_2xx(self, response: SipResponse) -> None: ...

    placed = Placed()
    table.register(placed)
    table.forget(placed, after=TIMEOUT)
    assert table.outgoing("call-9", "t9") is placed
    clock.advance(TIMEOUT)
    assert table.outgoing("call-9", "t9") is None
