"""Two nodes on one PostgreSQL and one audio store behind Kamailio: calls land on both,
every voicemail is kept and mailed once, and the nodes' hang-ups reach callers via the proxy."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from tests.calls.conftest import (
    SmtpSink,
    ended,
    free_udp_port,
    rtp_range,
    run_sipp,
    start_target,
    wait_for,
)
from tests.calls.kamailio import kamailio
from tests.conftest import (
    Account,
    RunningServer,
    base_settings,
    drop_postgres_database,
    postgres_database,
    run_server,
)
from tests.node_process import serving_node


def _records(node: RunningServer, acc: Account, count: int) -> list[dict[str, Any]] | None:
    rows = ended(node.client.get(f"/account/{acc.account_id}/call", headers=acc.headers))
    return rows if len(rows) == count else None


@contextmanager
def in_process_cluster(
    tmp_path: Path, **settings: Any
) -> Iterator[tuple[RunningServer, RunningServer, int]]:
    """Two in-process nodes on a fresh PostgreSQL database behind Kamailio: (a, b, proxy port)."""
    database = postgres_database()
    try:
        shared = base_settings(tmp_path, database, **settings)
        nodes = [
            replace(shared, sip_port=free_udp_port(), rtp_ports=rtp_range(), node_name=name)
            for name in ("node-a", "node-b")
        ]
        for a in run_server(nodes[0]):
            for b in run_server(nodes[1]):
                with kamailio(tmp_path / "kamailio", [n.sip_port for n in nodes]) as proxy:
                    yield a, b, proxy
    finally:
        drop_postgres_database(database)


def test_calls_through_kamailio_are_spread_over_two_nodes(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    smtp = {"smtp_url": f"smtp://127.0.0.1:{smtp_sink.port}", "smtp_from": "vm@openivr.test"}
    with in_process_cluster(tmp_path, **smtp) as (a, b, proxy):
        acc = a.account()
        apps = a.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()[
            "response"
        ]
        box = next(x["app_id"] for x in apps if x["app_type"] == "mailbox")
        r = a.client.put(
            f"/account/{acc.account_id}/voiceapp/{box}",
            headers=acc.headers,
            json={"greeting_prompt": "no", "goodbye_prompt": "no"},
        )
        assert r.status_code == 200, r.text
        for _ in range(2):
            # Fails unless the node's BYE comes back through Kamailio.
            run_sipp(
                a,
                "proxied_mailbox_message.xml",
                tmp_path,
                box,
                values={"audio_ms": "2000", "bye_timeout": "8000"},
                sip_port=proxy,
            )

        calls = wait_for(partial(_records, b, acc, 2))
        assert sorted(c["node"] for c in calls) == ["node-a", "node-b"]
        assert [c["ended_by"] for c in calls] == ["us", "us"]

        # Both messages are seen from either node and mailed exactly once.
        listed = a.client.get(
            f"/account/{acc.account_id}/voiceapp/{box}/voicemail",
            headers=acc.headers,
        ).json()["response"]
        ids = {m["message_id"] for m in listed}
        assert len(ids) == 2
        wait_for(lambda: len(smtp_sink.messages) >= 2)
        mailed = [m["X-OpenIVR-Message"] for m in smtp_sink.messages]
        assert sorted(mailed) == sorted(ids)


def test_a_phone_registered_through_kamailio_is_rung_by_the_other_node(tmp_path: Path) -> None:
    with in_process_cluster(tmp_path) as (a, _b, proxy):
        acc = a.account()
        user = f"/account/{acc.account_id}/user/{acc.user_id}"
        r = a.client.put(user, headers=acc.headers, json={"sip_password": "phone-pw-1"})
        assert r.status_code == 200, r.text
        r = a.client.post(
            f"/account/{acc.account_id}/phonenumbersubscription",
            headers=acc.headers,
            json={
                "phnum": "+46812340000",
                "connect_to_type": "user",
                "connect_to": acc.user_id,
            },
        )
        assert r.status_code == 200, r.text
        # The challenge comes from one node and the answer reaches the other
        # (round robin): both must accept the nonce.
        phone_port = free_udp_port()
        run_sipp(
            a,
            "register_behind_nat.xml",
            tmp_path,
            acc.user_id,
            values={"domain": a.settings.sip_domain, "nat_port": str(free_udp_port())},
            sip_port=proxy,
            local_port=phone_port,
            extra=("-au", acc.user_id, "-ap", "phone-pw-1"),
        )
        phone = start_target(
            "phone_answer_routed.xml",
            tmp_path,
            {"ruri_user": acc.user_id, "from_user": r"\+46701234567"}
            | {"callee_pt": "8", "callee_codec": "PCMA", "ring_ms": "300"},
            extra=("-rtp_echo",),
            port=phone_port,
        )
        try:
            run_sipp(
                a,
                "proxied_caller_bye.xml",
                tmp_path,
                "46812340000",
                values={"hold_ms": "1500"},
                sip_port=proxy,
            )
            phone.finish()  # answered, got our ACK and then the BYE via the proxy
        finally:
            phone.proc.kill()
        [call] = wait_for(partial(_records, a, acc, 1))
        [leg] = call["transfers"]
        assert leg["status"] == "answered" and call["ended_by"] == "caller"


def test_a_rolling_restart_loses_no_call(tmp_path: Path) -> None:
    database = postgres_database()
    try:
        ports = [free_udp_port(), free_udp_port()]

        def flags(i: int) -> tuple[str, ...]:
            return (
                *("--database-url", database, "--secret", "cluster-secret-for-the-test"),
                *("--sip-port", str(ports[i]), "--rtp-ports", rtp_range()),
                *("--node-name", f"node-{'ab'[i]}", "--drain-seconds", "20"),
            )

        with (
            serving_node(tmp_path, *flags(0), name="a") as a,
            serving_node(tmp_path, *flags(1), name="b") as b,
            kamailio(tmp_path / "kamailio", ports) as proxy,
            ThreadPoolExecutor(1) as pool,
        ):
            menu = a.app_of_type("ivr")["app_id"]
            # A caller talks to node a for 5 s ...
            talking = pool.submit(
                run_sipp, None, "caller_bye.xml", tmp_path, menu,
                values={"wait_ms": "5000"}, sip_port=ports[0],
            )  # fmt: skip
            a.wait_for_calls_in_progress()
            a.proc.send_signal(signal.SIGTERM)  # ... while node a is being restarted.
            a.wait_until_draining()
            # New callers reach node b whichever node Kamailio tries first.
            for _ in range(2):
                run_sipp(
                    None,
                    "proxied_caller_bye.xml",
                    tmp_path,
                    menu,
                    values={"hold_ms": "300"},
                    sip_port=proxy,
                )
            talking.result(timeout=30)
            assert a.proc.wait(timeout=15) in (0, -signal.SIGTERM)
            # Node a's token works on node b (one secret); a's process is gone by now.
            calls = replace(b, token=a.token).get(f"/account/{a.account_id}/call")
            assert sorted((c["node"], c["ended_by"]) for c in calls) == [
                ("node-a", "caller"),
                ("node-b", "caller"),
                ("node-b", "caller"),
            ]
    finally:
        drop_postgres_database(database)


def _two_free_ports() -> int:
    """A port p with p + 1 free too (UDP and TCP), for a node with two workers."""
    for _ in range(100):
        port = free_udp_port()
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
            ):
                udp.bind(("127.0.0.1", port + 1))
                tcp.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no two consecutive free ports")


def test_one_serve_with_two_workers_takes_calls_on_both_behind_kamailio(tmp_path: Path) -> None:
    port = _two_free_ports()
    flags = ("--sip-port", str(port), "--rtp-ports", rtp_range(), "--node-name", "box")
    with serving_node(tmp_path, *flags, "--workers", "2") as node:
        # The dispatcher list the node wrote for its workers is what Kamailio balances over.
        written = (tmp_path / "data" / "dispatcher-box.list").read_text()
        assert written == f"1 sip:127.0.0.1:{port}\n1 sip:127.0.0.1:{port + 1}\n"
        menu = node.app_of_type("ivr")["app_id"]
        with kamailio(tmp_path / "kamailio", [port, port + 1]) as proxy:
            for _ in range(2):
                run_sipp(
                    None,
                    "proxied_caller_bye.xml",
                    tmp_path,
                    menu,
                    values={"hold_ms": "300"},
                    sip_port=proxy,
                )
        calls = wait_for(lambda: (rows := [c for c in node.get(f"/account/{node.account_id}/call") if c["end_time"]]) and len(rows) == 2 and rows)  # fmt: skip
        assert sorted(c["node"] for c in calls) == ["box-1", "box-2"]
        assert [c["ended_by"] for c in calls] == ["caller", "caller"]
