"""Several nodes on one database and audio store: each delivery is sent by one node."""

from __future__ import annotations

import collections
import time
from dataclasses import replace
from pathlib import Path

from tests.delivery.conftest import MailServer, node_settings, run_node


def test_two_nodes_send_each_message_once(
    tmp_path: Path, database_url: str, mail: MailServer
) -> None:
    first = node_settings(tmp_path, database_url, smtp_url=mail.url)
    # The second node shares database, audio store and secret but has its own worker.
    second = replace(first)
    mail.handler.refuse = "421 4.3.2 not yet"
    for a in run_node(first):
        for b in run_node(second):
            acc = a.account()
            box = a.mailbox(acc, deliver_to="email", deliver_to_details="both@example.com")
            ids = [a.deposit(acc.account_id, box) for _ in range(10)]
            ids += [b.deposit(acc.account_id, box) for _ in range(10)]
            # Both workers retry while the server refuses, then race when it accepts.
            deadline = time.time() + 30
            while mail.handler.refused < 40 and time.time() < deadline:
                time.sleep(0.05)
            mail.handler.refuse = None
            for msg in ids:
                b.wait_state(acc, box, msg, lambda v: v["delivery_state"] == "delivered")
            time.sleep(0.3)  # a second send, were there one, would arrive by now
            counts = collections.Counter(m["X-OpenIVR-Message"] for m in mail.handler.messages)
            assert set(counts) == set(ids)
            assert set(counts.values()) == {1}
