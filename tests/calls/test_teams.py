"""Teams and opening hours on real SIP calls: SIPp and baresip phones as members, a SIPp caller.

- an `order` team whose first member rings out and whose second answers;
- an `all` team of two registered baresip phones, one of which answers;
- nobody answers: "all busy", then the mailbox takes the caller's message;
- a menu closed now sends the caller to its closed action, open now it plays the menu;
- a member with neither phone nor SIP address is rung at their number through the trunk.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from openivr.audio import tones
from openivr.store.db import open_database
from openivr.store.models import Team
from tests.calls.conftest import ended, free_udp_port, rtp_range, run_sipp, start_target, wait_for
from tests.conftest import Account, RunningServer, base_settings, require_binary, run_server

SIP_PASSWORD = "phone-pass-1"


def _user(server: RunningServer, acc: Account, name: str, **fields: Any) -> str:
    r = server.client.post(
        f"/account/{acc.account_id}/user",
        headers=acc.headers,
        json={
            "user_fname": name,
            "email": f"{name.lower()}-{acc.account_id}@example.com",
            "password": "password1",
            **fields,
        },
    )
    assert r.status_code < 300, r.text
    return str(r.json()["response"]["user_id"])


def _team(server: RunningServer, acc: Account, body: dict[str, Any]) -> str:
    r = server.client.post(f"/account/{acc.account_id}/team", headers=acc.headers, json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["response"]["team_id"])


def _apps(server: RunningServer, acc: Account) -> dict[str, dict[str, Any]]:
    r = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
    return {a["name"]: a for a in r.json()["response"]}


def _number_to_team(server: RunningServer, acc: Account, phnum: str, team_id: str) -> None:
    r = server.client.post(
        f"/account/{acc.account_id}/phonenumbersubscription",
        headers=acc.headers,
        json={"phnum": phnum, "connect_to_type": "csg", "connect_to": team_id},
    )
    assert r.status_code < 300, r.text


def _last_call(server: RunningServer, acc: Account) -> dict[str, Any]:
    rows = wait_for(
        lambda: ended(server.client.get(f"/account/{acc.account_id}/call", headers=acc.headers))
    )
    return dict(rows[0])


def _last_answered(server: RunningServer, team_id: str) -> str:
    async def read() -> str:
        async with open_database(server.settings.effective_database_url) as (_e, sessions):
            async with sessions() as db:
                return str(
                    await db.scalar(select(Team.last_answered).where(Team.team_id == team_id))
                )

    return asyncio.run(read())


def test_order_rings_the_first_member_out_then_the_second_answers(
    phone_server: RunningServer, tmp_path: Path
) -> None:
    acc = phone_server.account()
    ringing = start_target(
        "callee_rings.xml", tmp_path, {"ruri_user": "anna", "from_user": r"\+46701234567"}
    )
    answering = start_target(
        "callee_hangs_up.xml",
        tmp_path,
        {
            "ruri_user": "bob",
            "from_user": r"\+46701234567",
            "ring_ms": "400",
            "hold_ms": "3000",
            "callee_pt": "8",
            "callee_codec": "PCMA",
        },
        extra=("-rtp_echo",),
    )
    anna = _user(phone_server, acc, "Anna", sip_uri=f"sip:anna@127.0.0.1:{ringing.port}")
    bob = _user(phone_server, acc, "Bob", sip_uri=f"sip:bob@127.0.0.1:{answering.port}")
    team = _team(
        phone_server,
        acc,
        {"name": "Sales", "members": [anna, bob], "strategy": "order", "ring_seconds": 5},
    )
    menu = _apps(phone_server, acc)["Main menu"]
    phone_server.client.put(
        f"/account/{acc.account_id}/voiceapp/{menu['app_id']}",
        headers=acc.headers,
        json={"menu": {"digit_3": {"action": "call", "to": "csg", "id": team}}},
    )
    # Key 3; please-wait; Anna rings 5 s and is cancelled; Bob answers, talks, hangs up.
    run_sipp(
        phone_server,
        "transfer_talk.xml",
        tmp_path,
        menu["app_id"],
        values={"key": "3", "wait_ms": "800", "ring_wait_ms": "8000", "bye_timeout": "25000"},
    )
    ringing.finish()
    answering.finish()
    call = _last_call(phone_server, acc)
    assert call["outcome"] == "transferred" and call["keys"] == "3"
    first, second = call["transfers"]
    assert (first["team_id"], first["attempt"], first["user_id"]) == (team, 1, anna)
    assert first["status"] == "no_answer" and first["uri"].startswith("sip:anna@")
    assert (second["team_id"], second["attempt"], second["user_id"]) == (team, 2, bob)
    assert second["status"] == "answered" and second["ended_by"] == "target"
    assert second["packets_from_target"] > 0  # Bob's side was bridged to the caller
    rang_for = datetime.fromisoformat(first["ended_at"]) - datetime.fromisoformat(
        first["started_at"]
    )
    assert timedelta(seconds=4.5) <= rang_for <= timedelta(seconds=7)
    # Every node's next `rotate` call starts after Bob.
    assert _last_answered(phone_server, team) == bob


def _baresip(
    home: Path, server: RunningServer, user_id: str, answer: str
) -> subprocess.Popen[bytes]:
    """A baresip desk phone registered to the node as the user; `answer` auto or manual."""
    baresip = require_binary("baresip")
    home.mkdir()
    with wave.open(str(home / "voice.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(tones.beep(600.0, 20000, -12.0).astype("<i2").tobytes())
    domain = server.settings.sip_domain
    (home / "accounts").write_text(
        f"<sip:{user_id}@{domain}>;auth_pass={SIP_PASSWORD};"
        f'outbound="sip:127.0.0.1:{server.settings.sip_port};transport=udp";'
        f"regint=600;answermode={answer}\n"
    )
    (home / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                "sip_listen 127.0.0.1:0",
                "module_path /usr/lib/baresip/modules",
                "module g711.so",
                "module aufile.so",
                "module_app account.so",
                "module_app menu.so",
                f"audio_source aufile,{home / 'voice.wav'}",
                "audio_player aufile,/dev/null",
                "audio_alert aufile,/dev/null",
                "",
            ]
        )
    )
    return subprocess.Popen(
        [baresip, "-4", "-n", "127.0.0.1", "-f", str(home), "-t", "40"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=home,
    )


def test_all_rings_two_baresip_phones_at_once_and_one_answers(
    phone_server: RunningServer, tmp_path: Path
) -> None:
    acc = phone_server.account()
    base = f"/account/{acc.account_id}"
    anna, bob = _user(phone_server, acc, "Anna"), _user(phone_server, acc, "Bob")
    for user in (anna, bob):
        r = phone_server.client.put(
            f"{base}/user/{user}", headers=acc.headers, json={"sip_password": SIP_PASSWORD}
        )
        assert r.status_code == 200, r.text
    phones = [
        _baresip(tmp_path / "anna", phone_server, anna, "manual"),  # rings, nobody picks up
        _baresip(tmp_path / "bob", phone_server, bob, "auto"),
    ]
    try:

        def registered() -> bool:
            async def count() -> int:
                from openivr.store.registrations import Registration

                async with open_database(phone_server.settings.effective_database_url) as (
                    _e,
                    sessions,
                ):
                    async with sessions() as db:
                        rows = await db.scalars(select(Registration.user_id))
                        return len(set(rows.all()) & {anna, bob})

            return asyncio.run(count()) == 2

        wait_for(registered, timeout=20)
        team = _team(phone_server, acc, {"name": "Desk", "members": [anna, bob]})
        _number_to_team(phone_server, acc, "+46812345601", team)
        # The caller dials the number: both phones ring; Bob's answers; the caller talks 4 s.
        run_sipp(
            phone_server, "caller_bye.xml", tmp_path, "46812345601", values={"wait_ms": "4000"}
        )
        call = _last_call(phone_server, acc)
    finally:
        outputs = []
        for phone in phones:
            phone.terminate()
            outputs.append(phone.communicate(timeout=10)[0].decode(errors="replace"))
    assert call["outcome"] == "transferred", (call, outputs[1][-1500:])
    [ring] = call["transfers"]
    assert ring["team_id"] == team and ring["status"] == "answered"
    assert ring["answered_by"] == bob and ring["ended_by"] == "caller"
    assert ring["members"] == [
        {"user_id": anna, "status": "cancelled"},
        {"user_id": bob, "status": "answered"},
    ]
    assert ring["packets_from_target"] > 0  # Bob's phone's audio reached the caller


def test_nobody_answers_and_the_mailbox_takes_a_message(
    phone_server: RunningServer, tmp_path: Path
) -> None:
    acc = phone_server.account()
    ringing = start_target(
        "callee_rings.xml", tmp_path, {"ruri_user": "anna", "from_user": r"\+46701234567"}
    )
    anna = _user(phone_server, acc, "Anna", sip_uri=f"sip:anna@127.0.0.1:{ringing.port}")
    box = _apps(phone_server, acc)["Voice Mail"]
    box_url = f"/account/{acc.account_id}/voiceapp/{box['app_id']}"
    phone_server.client.put(
        box_url, headers=acc.headers, json={"greeting_prompt": "no", "goodbye_prompt": "no"}
    )
    team = _team(
        phone_server,
        acc,
        {
            "name": "Support",
            "members": [anna],
            "strategy": "order",
            "ring_seconds": 5,
            "no_answer": {"action": "connect", "to": "app", "id": box["app_id"]},
        },
    )
    _number_to_team(phone_server, acc, "+46812345602", team)
    # Anna rings out (5 s), "all our staff are busy" plays, then the beep: the caller speaks
    # and ends the message with #.
    run_sipp(
        phone_server,
        "message_after_wait.xml",
        tmp_path,
        "46812345602",
        values={"wait_ms": "6500", "audio_ms": "4500", "bye_timeout": "8000"},
    )
    ringing.finish()
    messages = wait_for(
        lambda: phone_server.client.get(f"{box_url}/voicemail", headers=acc.headers).json()[
            "response"
        ]
    )
    assert len(messages) == 1 and messages[0]["duration"] >= 1.0
    call = _last_call(phone_server, acc)
    assert call["outcome"] == "voicemail" and call["apps"] == [box["app_id"]]
    [ring] = call["transfers"]
    assert (ring["team_id"], ring["user_id"], ring["status"]) == (team, anna, "no_answer")


def test_a_menu_closed_now_sends_callers_to_its_closed_action(
    phone_server: RunningServer, tmp_path: Path
) -> None:
    acc = phone_server.account()
    base = f"/account/{acc.account_id}"
    apps = _apps(phone_server, acc)
    menu, box = apps["Main menu"], apps["Voice Mail"]
    # Closed today and tomorrow in UTC, so the test holds across midnight.
    today = datetime.now(UTC).date()
    closed = phone_server.client.post(
        f"{base}/schedule",
        headers=acc.headers,
        json={
            "name": "Closed",
            "timezone": "UTC",
            "weekly": [
                {
                    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                    "from": "00:00",
                    "to": "24:00",
                }
            ],
            "closed_dates": [today.isoformat(), (today + timedelta(days=1)).isoformat()],
        },
    ).json()["response"]
    menu_url = f"{base}/voiceapp/{menu['app_id']}"
    hours = {
        "schedule_id": closed["schedule_id"],
        "closed_action": {"action": "connect", "to": "app", "id": box["app_id"]},
    }
    assert (
        phone_server.client.put(
            menu_url, headers=acc.headers, json={"open_hours": hours}
        ).status_code
        == 200
    )
    run_sipp(phone_server, "caller_bye.xml", tmp_path, menu["app_id"], values={"wait_ms": "1500"})
    assert _last_call(phone_server, acc)["apps"] == [menu["app_id"], box["app_id"]]
    # Open every day from now on: the same menu plays its menu.
    phone_server.client.put(
        f"{base}/schedule/{closed['schedule_id']}", headers=acc.headers, json={"closed_dates": []}
    )
    run_sipp(phone_server, "caller_bye.xml", tmp_path, menu["app_id"], values={"wait_ms": "1500"})
    calls = wait_for(
        lambda: [
            c
            for c in ended(phone_server.client.get(f"{base}/call", headers=acc.headers))
            if len(c["apps"]) == 1
        ]
    )
    assert calls[0]["apps"] == [menu["app_id"]]


def test_a_member_on_another_call_is_skipped_in_order(
    phone_server: RunningServer, tmp_path: Path
) -> None:
    acc = phone_server.account()
    for sub in ("bob", "carol", "second"):
        (tmp_path / sub).mkdir()
    values = {"from_user": r"\+46701234567", "ring_ms": "300", "callee_pt": "8"}
    # Both answer and talk until the caller hangs up.
    bob_phone = start_target(
        "callee_answer.xml",
        tmp_path / "bob",
        {**values, "ruri_user": "bob", "callee_codec": "PCMA"},
    )
    carol_phone = start_target(
        "callee_answer.xml",
        tmp_path / "carol",
        {**values, "ruri_user": "carol", "callee_codec": "PCMA"},
    )
    bob = _user(phone_server, acc, "Bob", sip_uri=f"sip:bob@127.0.0.1:{bob_phone.port}")
    carol = _user(phone_server, acc, "Carol", sip_uri=f"sip:carol@127.0.0.1:{carol_phone.port}")
    base = f"/account/{acc.account_id}"
    phone_server.client.post(
        f"{base}/phonenumbersubscription",
        headers=acc.headers,
        json={"phnum": "+46812345603", "connect_to_type": "user", "connect_to": bob},
    )
    team = _team(phone_server, acc, {"name": "Sales", "members": [bob, carol], "strategy": "order"})
    _number_to_team(phone_server, acc, "+46812345604", team)
    failures: list[BaseException] = []

    def first_caller() -> None:
        try:
            run_sipp(
                phone_server, "caller_bye.xml", tmp_path, "46812345603", values={"wait_ms": "8000"}
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread below
            failures.append(exc)

    talking = threading.Thread(target=first_caller)
    talking.start()
    try:
        # Bob answers the first caller within a second; then the second caller reaches the team.
        time.sleep(3.0)
        run_sipp(
            phone_server,
            "caller_bye.xml",
            tmp_path / "second",
            "46812345604",
            values={"wait_ms": "3000"},
        )
    finally:
        talking.join(timeout=30)
    assert not failures, failures
    bob_phone.finish()
    carol_phone.finish()
    calls = wait_for(
        lambda: [
            c
            for c in ended(phone_server.client.get(f"{base}/call", headers=acc.headers))
            if c["to"] == "46812345604"
        ]
    )
    skipped, answered = calls[0]["transfers"]
    assert (skipped["user_id"], skipped["status"]) == (bob, "busy")
    assert skipped["detail"] == "on another call of this node: not rung" and skipped["uri"] == ""
    assert (answered["user_id"], answered["status"]) == (carol, "answered")


def test_a_member_with_only_a_number_is_rung_through_the_trunk(tmp_path: Path) -> None:
    ringing = start_target(
        "callee_rings.xml", tmp_path, {"ruri_user": "anna", "from_user": r"\+46701234567"}
    )
    # The trunk: it answers the call to Bob's number, as his mobile would.
    trunk = start_target(
        "callee_hangs_up.xml",
        tmp_path,
        {
            "ruri_user": r"\+46701112233",
            "from_user": r"\+46701234567",
            "ring_ms": "400",
            "hold_ms": "3000",
            "callee_pt": "8",
            "callee_codec": "PCMA",
        },
        extra=("-rtp_echo",),
    )
    settings = base_settings(
        tmp_path,
        sip_port=free_udp_port(),
        rtp_ports=rtp_range(),
        sip_trunk=f"sip:127.0.0.1:{trunk.port}",
    )
    for server in run_server(settings):
        acc = server.account()
        anna = _user(server, acc, "Anna", sip_uri=f"sip:anna@127.0.0.1:{ringing.port}")
        bob = _user(server, acc, "Bob", phnum="+46701112233")  # no phone, no SIP address
        team = _team(
            server,
            acc,
            {"name": "Sales", "members": [anna, bob], "strategy": "order", "ring_seconds": 5},
        )
        menu = _apps(server, acc)["Main menu"]
        server.client.put(
            f"/account/{acc.account_id}/voiceapp/{menu['app_id']}",
            headers=acc.headers,
            json={"menu": {"digit_3": {"action": "call", "to": "csg", "id": team}}},
        )
        run_sipp(
            server,
            "transfer_talk.xml",
            tmp_path,
            menu["app_id"],
            values={"key": "3", "wait_ms": "800", "ring_wait_ms": "8000", "bye_timeout": "25000"},
        )
        ringing.finish()
        trunk.finish()
        call = _last_call(server, acc)
    first, second = call["transfers"]
    assert (first["user_id"], first["status"]) == (anna, "no_answer")
    assert (second["user_id"], second["attempt"], second["status"]) == (bob, 2, "answered")
    assert second["uri"] == f"sip:+46701112233@127.0.0.1:{trunk.port}", second
    assert second["packets_from_target"] > 0
