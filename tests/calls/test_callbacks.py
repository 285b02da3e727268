"""Callback calls with real peers: two phones behind a SIPp trunk, connected with audio both
ways and hung up by either side; a busy second phone; a user's registered baresip phone.

The trunk's phones do their SIP in SIPp and their audio here (`MediaPeer`): each sends its own
tone to whoever sends it audio, so what each heard tells whether the other's voice crossed.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from openivr.audio import g711, tones
from openivr.store.db import open_database
from tests.calls.conftest import SCENARIOS, ended, rtp_range, start_target, wait_for
from tests.calls.test_teams import SIP_PASSWORD, _baresip
from tests.conftest import (
    Account,
    RunningServer,
    base_settings,
    free_port,
    free_port_block,
    require_binary,
    run_server,
    wait_udp_bound,
)
from tests.node_process import serving_node

URL = "/make-calls/call/call-back"
FIRST, SECOND = "+46701000001", "+46701000002"
SHOWN = "+46812345600"  # the account's number, assigned to its admin: both sides see it


class MediaPeer:
    """A phone's audio: once something sends it RTP it answers with its own tone (PCMU, every
    20 ms, to where the audio came from), and keeps every payload it hears."""

    def __init__(self, frequency: float) -> None:
        self.frequency = frequency
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.005)
        self.port = int(self.sock.getsockname()[1])
        self.heard: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tone = tones.beep(self.frequency, 60_000, -12.0)
        frames = g711.encode_frames(tone, "PCMU")
        source: tuple[str, int] | None = None
        sequence, sent = 0, 0
        next_at = 0.0
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(2048)
                if len(data) > 12 and data[1] & 0x7F == 0:
                    self.heard.append(data[12:])
                    source = addr
            except (TimeoutError, BlockingIOError):
                pass
            now = time.monotonic()
            if source is not None and now >= next_at:
                header = struct.pack("!BBHII", 0x80, 0, sequence & 0xFFFF, sent * 160, 0x1234)
                self.sock.sendto(header + frames[sent % len(frames)], source)
                sequence, sent = sequence + 1, sent + 1
                next_at = max(now, next_at) + 0.02 if next_at else now + 0.02

    def stop(self) -> np.ndarray:
        """Stop; all it heard as 8 kHz samples."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        return g711.decode(b"".join(self.heard), "PCMU").astype(np.float64)


def power(samples: np.ndarray, frequency: float) -> float:
    """The share of the signal's energy within 20 Hz of `frequency`."""
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / 8000)
    total = float(spectrum.sum()) or 1.0
    return float(spectrum[np.abs(freqs - frequency) < 20].sum()) / total


def loud_seconds(samples: np.ndarray) -> float:
    """How long the signal is above a whisper, in 20 ms frames."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    return float((np.sqrt((frames**2).mean(axis=1)) > 300).sum()) * 0.02


class Trunk:
    """A SIPp trunk with one phone behind it per call (tests/calls/scenarios/callback_trunk.xml):
    `phones` is each call's (media port, talk | hang | busy), in the order we call them."""

    def __init__(
        self, tmp: Path, port: int, phones: list[tuple[int, str]], hold_ms: int = 4000
    ) -> None:
        sipp = require_binary("sipp")
        self.port = port
        text = (SCENARIOS / "callback_trunk.xml").read_text()
        text = text.replace("[ring_ms]", "300").replace("[hold_ms]", str(hold_ms))
        scenario = tmp / "callback_trunk.xml"
        scenario.write_text(text)
        phones_file = tmp / "phones.csv"
        phones_file.write_text(
            "SEQUENTIAL\n" + "".join(f"{port};{role};\n" for port, role in phones)
        )
        self.messages = tmp / "trunk_messages.log"
        self.errors = tmp / "trunk_errors.log"
        self.proc = subprocess.Popen(
            [
                sipp,
                "-sf",
                str(scenario),
                "-inf",
                str(phones_file),
                "-m",
                str(len(phones)),
                "-i",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-mi",
                "127.0.0.1",
                "-mp",
                str(free_port_block()),
                "-timeout",
                "60s",
                "-timeout_error",
                "-nostdin",
                "-trace_msg",
                "-message_file",
                str(self.messages),
                "-trace_err",
                "-error_file",
                str(self.errors),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp,
        )
        wait_udp_bound(self.port, self.proc)

    def finish(self, timeout: float = 60) -> None:
        """Wait for both calls to end; fail with SIPp's errors unless they passed."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        if self.proc.returncode != 0:
            detail = self.errors.read_text()[-3000:] if self.errors.exists() else out[-3000:]
            pytest.fail(f"the SIPp trunk exited {self.proc.returncode}:\n{detail}")

    def invites(self) -> list[str]:
        """The INVITEs the trunk received, as text, in order."""
        text = self.messages.read_text(errors="replace")
        return [part for part in text.split("received [") if "\nINVITE sip:" in part[:400]]


@pytest.fixture
def trunk_node(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[RunningServer, int]]:
    """A node whose --sip-trunk is a SIPp started by the test on the port given with it (its
    --transfer-mode the test's parameter, bridge by default)."""
    trunk_port = free_port()
    settings = base_settings(
        tmp_path,
        sip_port=free_port(),
        rtp_ports=rtp_range(),
        sip_trunk=f"sip:127.0.0.1:{trunk_port}",
        transfer_timeout=10.0,
        transfer_mode=getattr(request, "param", "bridge"),
    )
    for server in run_server(settings):
        yield server, trunk_port


def _number(server: RunningServer, acc: Account) -> None:
    r = server.client.post(
        f"/account/{acc.account_id}/phonenumbersubscription",
        headers=acc.headers,
        json={"phnum": SHOWN, "connect_to_type": "user", "connect_to": acc.user_id},
    )
    assert r.status_code == 200, r.text


def _callback(server: RunningServer, acc: Account, body: dict[str, Any]) -> str:
    r = server.client.post(URL, headers=acc.headers, json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["statusCode"] == 202 and answer["status"] == "success", answer
    return str(answer["response"]["session_id"])


def _record(server: RunningServer, acc: Account, session_id: str) -> dict[str, Any]:
    def found() -> Any:
        rows = ended(server.client.get(f"/account/{acc.account_id}/call", headers=acc.headers))
        return next((row for row in rows if row["call_id"] == session_id), None)

    return dict(wait_for(found, timeout=30))


@pytest.mark.parametrize(
    ("trunk_node", "hangs_up"),
    # A callback's second leg is bridged also when the node's transfers are REFERs.
    [("bridge", "call1"), ("bridge", "call2"), ("refer", "call2")],
    indirect=["trunk_node"],
)
def test_two_phones_behind_the_trunk_talk_both_ways(
    trunk_node: tuple[RunningServer, int], tmp_path: Path, hangs_up: str
) -> None:
    server, trunk_port = trunk_node
    acc = server.account()
    _number(server, acc)
    first, second = MediaPeer(700.0), MediaPeer(1300.0)
    roles = ("hang", "talk") if hangs_up == "call1" else ("talk", "hang")
    trunk = Trunk(tmp_path, trunk_port, [(first.port, roles[0]), (second.port, roles[1])])
    try:
        session = _callback(server, acc, {"app_id": "test", "call1": FIRST, "call2": SECOND})
        trunk.finish()
    finally:
        heard_by_first, heard_by_second = first.stop(), second.stop()
    call = _record(server, acc, session)
    assert call["outcome"] == "connected" and call["ended_by"] == hangs_up, call
    assert (call["from"], call["to"]) == (FIRST, SECOND)
    leg1, leg2 = call["transfers"]
    assert (leg1["leg"], leg1["status"], leg1["uri"]) == ("call1", "answered", leg1["uri"])
    assert leg1["uri"].startswith(f"sip:{FIRST}@127.0.0.1")
    assert (leg2["leg"], leg2["status"]) == ("call2", "answered")
    assert leg2["uri"].startswith(f"sip:{SECOND}@127.0.0.1")
    assert leg1["answered_at"] <= leg2["started_at"] <= leg2["answered_at"]
    assert leg2["ended_by"] == ("target" if hangs_up == "call2" else "caller")
    assert call["detail"]["kind"] == "callback" and call["detail"]["show_2"] == SHOWN
    # What each phone heard: the other's tone, not its own.
    assert power(heard_by_second, 700.0) > 0.3, power(heard_by_second, 700.0)
    assert power(heard_by_second, 1300.0) < 0.01
    assert power(heard_by_first, 1300.0) > 0.3, power(heard_by_first, 1300.0)
    assert power(heard_by_first, 700.0) < 0.01
    # Each side was dialled at its number, showing the account's number.
    invites = trunk.invites()
    assert len(invites) == 2
    assert f"INVITE sip:{FIRST}@" in invites[0] and f"INVITE sip:{SECOND}@" in invites[1]
    assert all(f"<sip:{SHOWN}@" in invite for invite in invites)


def test_a_busy_second_phone_leaves_the_first_with_unavailable(
    trunk_node: tuple[RunningServer, int], tmp_path: Path
) -> None:
    server, trunk_port = trunk_node
    acc = server.account()
    first = MediaPeer(700.0)
    trunk = Trunk(tmp_path, trunk_port, [(first.port, "talk"), (free_port(), "busy")])
    try:
        session = _callback(server, acc, {"call1": FIRST, "call2": SECOND})
        trunk.finish()  # the first phone gets our BYE once "unavailable" has played
    finally:
        heard = first.stop()
    call = _record(server, acc, session)
    assert call["outcome"] == "call2_busy" and call["ended_by"] == "us", call
    assert "busy (486)" in call["detail"]["reason"], call["detail"]
    leg1, leg2 = call["transfers"]
    assert leg1["status"] == "answered" and leg2["status"] == "busy" and leg2["sip_code"] == 486
    # No number in the account: nobody's is shown.
    assert (call["detail"]["show_1"], call["detail"]["show_2"]) == ("anonymous", "anonymous")
    # The call log finds the callbacks that ended so.
    found = server.client.get(
        f"/account/{acc.account_id}/call", params={"outcome": "call2_busy"}, headers=acc.headers
    )
    assert [c["call_id"] for c in found.json()["response"]] == [session]
    # The first party heard the message (speech, seconds of it), then the call ended.
    assert loud_seconds(heard) > 1.0, loud_seconds(heard)


def test_each_side_sees_the_caller_id_asked_for(
    trunk_node: tuple[RunningServer, int], tmp_path: Path
) -> None:
    server, trunk_port = trunk_node
    acc = server.account()
    older = "+46812345611"  # the account's oldest number, connected to nobody
    r = server.client.post(
        f"/account/{acc.account_id}/phonenumbersubscription",
        headers=acc.headers,
        json={"phnum": older},
    )
    assert r.status_code == 200, r.text
    _number(server, acc)  # SHOWN, connected to the admin who asks
    first = MediaPeer(700.0)
    trunk = Trunk(tmp_path, trunk_port, [(first.port, "talk"), (1, "busy")])
    try:
        # show_1 as the account wrote it ('+' optional); show_2 automatic: the admin's own.
        session = _callback(
            server, acc, {"call1": FIRST, "call2": SECOND, "show_1": older.lstrip("+")}
        )
        trunk.finish()
    finally:
        first.stop()
    call = _record(server, acc, session)
    assert (call["detail"]["show_1"], call["detail"]["show_2"]) == (older, SHOWN)
    to_first, to_second = trunk.invites()
    assert f"<sip:{older}@" in to_first and f"<sip:{SHOWN}@" in to_second


def test_a_callback_rings_a_user_on_their_registered_baresip_phone(
    trunk_node: tuple[RunningServer, int], tmp_path: Path
) -> None:
    server, _trunk_port = trunk_node
    acc = server.account()
    r = server.client.post(
        f"/account/{acc.account_id}/user",
        headers=acc.headers,
        json={
            "user_fname": "Bob",
            "email": f"bob-{acc.account_id}@example.com",
            "password": "password1",
            "sip_password": SIP_PASSWORD,
        },
    )
    assert r.status_code == 200, r.text
    bob = r.json()["response"]["user_id"]
    phone = _baresip(tmp_path / "bob", server, bob, "auto")
    echo_dir = tmp_path / "echo"
    echo_dir.mkdir()
    target = start_target(
        "callee_hangs_up.xml",
        echo_dir,
        {
            "ruri_user": "sales",
            "from_user": ".*",
            "ring_ms": "300",
            "hold_ms": "4000",
            "callee_pt": "0",
            "callee_codec": "PCMU",
        },
        extra=("-rtp_echo",),
    )
    try:

        def registered() -> bool:
            async def count() -> int:
                from openivr.store.registrations import Registration

                async with open_database(server.settings.effective_database_url) as (_e, db):
                    async with db() as s:
                        rows = await s.scalars(
                            select(Registration.user_id).where(Registration.user_id == bob)
                        )
                        return len(rows.all())

            return asyncio.run(count()) > 0

        wait_for(registered, timeout=20)
        session = _callback(
            server,
            acc,
            {
                "call1": f"bob-{acc.account_id}@example.com",
                "call2": f"sip:sales@127.0.0.1:{target.port}",
            },
        )
        target.finish()
        call = _record(server, acc, session)
    finally:
        phone.terminate()
        output = phone.communicate(timeout=10)[0].decode(errors="replace")
    assert call["outcome"] == "connected" and call["ended_by"] == "call2", (call, output[-1500:])
    leg1, leg2 = call["transfers"]
    assert (leg1["leg"], leg1["user_id"], leg1["status"]) == ("call1", bob, "answered")
    assert leg1["uri"].startswith(f"sip:{bob}")  # the Contact its REGISTER gave
    assert leg2["status"] == "answered" and leg2["ended_by"] == "target"
    assert leg2["target"] == f"sip:sales@127.0.0.1:{target.port}"  # not sip:sip:...
    # The phone's audio went to the target and its echo came back through the bridge.
    assert leg2["packets_from_target"] > 50 and leg2["packets_to_target"] > 50
    assert leg1["packets_from_target"] > 50


def test_a_callback_holds_two_of_max_calls(tmp_path: Path) -> None:
    trunk_port = free_port()
    settings = base_settings(
        tmp_path,
        sip_port=free_port(),
        rtp_ports=rtp_range(),
        sip_trunk=f"sip:127.0.0.1:{trunk_port}",
        max_calls=3,
    )
    first, second, third = MediaPeer(700.0), MediaPeer(1300.0), MediaPeer(900.0)
    phones = [(first.port, "talk"), (second.port, "hang"), (third.port, "talk"), (1, "busy")]
    for server in run_server(settings):
        acc = server.account()
        trunk = Trunk(tmp_path, trunk_port, phones)
        try:
            session = _callback(server, acc, {"call1": FIRST, "call2": SECOND})
            # Two of the three slots are held until it ends: a second callback does not fit.
            r = server.client.post(
                URL, headers=acc.headers, json={"call1": FIRST, "call2": "+4670999"}
            )
            assert r.status_code == 503, r.text
            assert r.json()["response"]["code"] == "unavailable"
            assert "--max-calls (3)" in r.json()["response"]["detail"]
            assert _record(server, acc, session)["outcome"] == "connected"
            # Once it ended, both slots are free again.
            again = _callback(server, acc, {"call1": FIRST, "call2": SECOND})
            trunk.finish()
            assert _record(server, acc, again)["outcome"] == "call2_busy"
        finally:
            for peer in (first, second, third):
                peer.stop()


def test_a_stopping_node_refuses_new_callbacks_and_lets_one_in_progress_finish(
    tmp_path: Path,
) -> None:
    trunk_port = free_port()
    flags = (
        "--sip-port", str(free_port()), "--rtp-ports", rtp_range(), "--drain-seconds", "20",
        "--sip-trunk", f"sip:127.0.0.1:{trunk_port}",
    )  # fmt: skip
    first, second = MediaPeer(700.0), MediaPeer(1300.0)
    with serving_node(tmp_path, *flags) as node:
        trunk = Trunk(tmp_path, trunk_port, [(first.port, "talk"), (second.port, "hang")])
        headers = {"Authorization": f"Bearer {node.token}"}
        try:
            r = httpx.post(
                node.base_url + URL, headers=headers, json={"call1": FIRST, "call2": SECOND}
            )
            assert r.status_code == 200, r.text
            session = r.json()["response"]["session_id"]
            time.sleep(1.5)
            node.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            refused = httpx.post(
                node.base_url + URL, headers=headers, json={"call1": FIRST, "call2": SECOND}
            )
            assert refused.status_code == 503, refused.text
            assert "stopping" in refused.json()["response"]["detail"]
            trunk.finish()  # the callback in progress went on to call2's own BYE
            code = node.proc.wait(timeout=30)
        finally:
            first.stop(), second.stop()
    assert code in (0, -signal.SIGTERM), node.log.read_text()
    log = node.log.read_text()
    assert f"call {session} ended: connected" in log, log[-3000:]
    assert "drain time is up" not in log


def test_call2_is_never_rung_when_call1_does_not_answer(
    trunk_node: tuple[RunningServer, int], tmp_path: Path
) -> None:
    server, trunk_port = trunk_node
    acc = server.account()
    trunk = Trunk(tmp_path, trunk_port, [(1, "busy")])
    session = _callback(server, acc, {"call1": FIRST, "call2": SECOND})
    trunk.finish()
    call = _record(server, acc, session)
    assert call["outcome"] == "call1_busy" and "call1 was busy (486)" in call["detail"]["reason"]
    [leg1] = call["transfers"]
    assert (leg1["leg"], leg1["status"], leg1["sip_code"]) == ("call1", "busy", 486)
    assert len(trunk.invites()) == 1  # the second number was never dialled


def test_call1_hanging_up_while_call2_rings_stops_the_ringing(
    trunk_node: tuple[RunningServer, int], tmp_path: Path
) -> None:
    server, trunk_port = trunk_node
    acc = server.account()
    first = MediaPeer(700.0)
    trunk = Trunk(tmp_path, trunk_port, [(first.port, "hang"), (1, "ring")], hold_ms=2000)
    try:
        session = _callback(server, acc, {"call1": FIRST, "call2": SECOND})
        trunk.finish()  # call2's phone got our CANCEL
    finally:
        heard = first.stop()
    call = _record(server, acc, session)
    assert call["outcome"] == "call1_hangup" and call["ended_by"] == "call1", call
    leg1, leg2 = call["transfers"]
    assert leg1["ended_by"] == "target" and leg2["status"] == "cancelled"
    assert power(heard, 425.0) > 0.3  # call1 heard ringback while call2 rang
