"""Voicemail delivery after an SMTP outage: 1,000 messages queued while the server is down.

Run: .venv/bin/python bench/voicemail/run.py [--messages 1000] [--database-url URL]
                                             [--outage 5] [--concurrency 10]

Deposits N messages (2 s each) into one mailbox that mails them, while nothing listens on the
SMTP port; every message fails at least once. After --outage seconds a real SMTP server
(aiosmtpd) comes up; the number reported is the time from then until every delivery is marked
delivered in the database, with the default back-off (1 s doubling, cap 10 min, jitter), so
it includes waiting for each message's next retry. Then it checks that none was lost and none
sent twice. The default database is SQLite in a temp dir.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import email
import email.policy
import logging
import socket
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select

from openivr.context import ServerContext
from openivr.delivery.deposit import deposit_voicemail
from openivr.delivery.policy import DeliveryPolicy
from openivr.delivery.worker import DeliveryWorker
from openivr.settings import Settings
from openivr.store import voicemail as vm
from openivr.store.accounts import create_account
from openivr.store.db import open_database
from openivr.store.models import VoiceApp


class Inbox:
    """Counts mails by voicemail id."""

    def __init__(self) -> None:
        self.count: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        with self.lock:
            self.count[str(parsed["X-OpenIVR-Message"])] += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def delivered(ctx: ServerContext, account_id: str) -> tuple[int, int]:
    """Delivered count and attempts of this run's account (the database may hold others)."""
    mine = select(vm.Voicemail.message_id).where(vm.Voicemail.account_id == account_id)
    async with ctx.sessions() as db:
        done = await db.scalar(
            select(func.count())
            .select_from(vm.Delivery)
            .where(vm.Delivery.state == vm.DELIVERED, vm.Delivery.message_id.in_(mine))
        )
        attempts = await db.scalar(
            select(func.sum(vm.Delivery.attempts)).where(vm.Delivery.message_id.in_(mine))
        )
    return int(done or 0), int(attempts or 0)


async def main(args: argparse.Namespace) -> None:
    logging.getLogger("openivr").setLevel(logging.ERROR)  # one warning per failed try otherwise
    tmp = Path(tempfile.mkdtemp(prefix="openivr-bench-vm-"))
    port = free_port()
    settings = replace(
        Settings(),
        data_dir=tmp,
        database_url=args.database_url,
        secret="bench",
        smtp_url=f"smtp://127.0.0.1:{port}",
    )
    policy = replace(DeliveryPolicy(), concurrency=args.concurrency)
    async with open_database(settings.effective_database_url) as (engine, sessions):
        ctx = ServerContext.build(settings, engine, sessions)
        ctx.delivery_policy = policy
        acc = await create_account(sessions, f"bench{port}@example.com", "benchpass")
        async with sessions() as db, db.begin():
            box = (
                await db.scalars(
                    select(VoiceApp).where(
                        VoiceApp.account_id == acc.account_id, VoiceApp.app_type == "mailbox"
                    )
                )
            ).one()
            box.config = dict(box.config, deliver_to="email", deliver_to_details="b@example.com")
        worker = DeliveryWorker(ctx, policy)
        ctx.delivery_worker = worker
        await worker.start()
        pcm = (np.sin(np.arange(16000) / 5) * 3000).astype(np.int16)
        t0 = time.perf_counter()
        ids: list[str] = []
        for i in range(args.messages):
            ids.append(
                await deposit_voicemail(
                    ctx,
                    account_id=acc.account_id,
                    app_id=box.app_id,
                    caller=f"+4670{i:07d}",
                    dialed="+468123",
                    pcm=pcm,
                    call_id=f"bench-{i}",
                )
            )
        deposit_s = time.perf_counter() - t0
        print(f"deposited {len(ids)} messages in {deposit_s:.2f} s ({len(ids) / deposit_s:.0f}/s)")
        await asyncio.sleep(args.outage)
        _done, tries = await delivered(ctx, acc.account_id)
        print(f"SMTP down for {args.outage:g} s: {tries} failed attempts recorded")
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        controller.start()
        t1 = time.perf_counter()
        worker.wake()
        first_all: float | None = None
        while True:
            done, tries = await delivered(ctx, acc.account_id)
            if done >= len(ids):
                first_all = time.perf_counter() - t1
                break
            if time.perf_counter() - t1 > args.timeout:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # a duplicate, were there one, would arrive now
        await worker.stop()
        controller.stop()
    with inbox.lock:
        counts = dict(inbox.count)
    lost = [i for i in ids if i not in counts]
    doubled = [i for i, n in counts.items() if n > 1]
    if first_all is None:
        print(f"NOT all delivered within {args.timeout:g} s: {done}/{len(ids)}")
    else:
        print(
            f"all {len(ids)} delivered {first_all:.2f} s after SMTP came up "
            f"({len(ids) / first_all:.0f} mails/s incl. back-off wait); attempts in all: {tries}"
        )
    print(f"lost: {len(lost)}  sent twice: {len(doubled)}  mails received: {sum(counts.values())}")


def parse() -> Any:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--database-url", default="")
    p.add_argument("--outage", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--timeout", type=float, default=600.0)
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
