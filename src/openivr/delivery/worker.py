"""The delivery worker of one node: claims due outbox rows with a lease and sends them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.context import ServerContext
from openivr.delivery import email, webhook
from openivr.delivery.deposit import adopt_orphans, files_of
from openivr.delivery.email import SendError, SmtpServer
from openivr.delivery.metadata import message_view
from openivr.delivery.policy import DeliveryPolicy
from openivr.store import voicemail as vm
from openivr.store.models import Account, VoiceApp, utcnow

log = logging.getLogger(__name__)


class DeliveryWorker:
    """Sends voicemail deliveries of the shared outbox; several nodes may run one each."""

    def __init__(self, ctx: ServerContext, policy: DeliveryPolicy):
        self.ctx = ctx
        self.policy = policy
        settings = ctx.settings
        self.smtp = (
            SmtpServer.from_url(
                settings.smtp_url,
                settings.smtp_starttls,
                settings.smtp_from,
                settings.smtp_ca_file,
            )
            if settings.smtp_url
            else None
        )
        self._smtp_sessions = email.SmtpSessions(self.smtp) if self.smtp is not None else None
        self.owner = f"{socket.gethostname()[:16]}-{os.getpid()}-{secrets.token_hex(3)}"
        self.webhook_key = webhook.webhook_key(settings.signing_secret())
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        # While the SMTP server is unreachable, e-mail is not claimed (each claim would fail
        # alike); the pause grows like a delivery's back-off and ends at the first success.
        self._smtp_outages = 0
        self._smtp_paused_until = 0.0
        # SQLite has one writer at a time and makes the others sleep and retry; the worker's own
        # writes take turns here instead (PostgreSQL writes rows in parallel).
        sqlite = ctx.engine.url.get_backend_name() == "sqlite"
        self._writing: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if sqlite else contextlib.nullcontext()
        )

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels this node sends now: e-mail only with SMTP configured and reachable."""
        if self.smtp is None or time.monotonic() < self._smtp_paused_until:
            return (vm.WEBHOOK,)
        return (vm.EMAIL, vm.WEBHOOK)

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        """Re-queue e-mail that waited for SMTP, adopt orphaned files, start the loop."""
        self._http = httpx.AsyncClient(timeout=self.policy.send_timeout, follow_redirects=False)
        if self.smtp is not None:
            count = await vm.release_not_configured(self.ctx.sessions, vm.EMAIL)
            if count:
                log.info("SMTP is configured: %d waiting voicemail e-mails queued", count)
        await self._adopt()
        self._task = asyncio.create_task(self._run(), name="voicemail-delivery")

    async def stop(self) -> None:
        """Stop claiming after one last look (messages the stopping node's calls just left go
        out now, not at the next start); let sends in flight finish (bounded), then close."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await self._claim()
        if self._inflight:
            # Unfinished sends keep their lease and are taken up again after it expires.
            _done, pending = await asyncio.wait(self._inflight, timeout=self.policy.send_timeout)
            for task in pending:
                task.cancel()
        if self._http is not None:
            await self._http.aclose()
        if self._smtp_sessions is not None:
            self._smtp_sessions.close()

    async def _adopt(self) -> None:
        try:
            await adopt_orphans(self.ctx, self.policy.adopt_after)
        except Exception:  # a broken file must not stop deliveries; it is logged
            log.exception("adopting voicemail files failed")

    async def _claim(self) -> bool:
        """Claim due deliveries while sends are free and start them; whether all were free."""
        free = self.policy.concurrency - len(self._inflight)
        if free <= 0:
            return False
        try:
            async with self._writing:
                claimed = await vm.claim_due(
                    self.ctx.sessions,
                    self.channels,
                    self.owner,
                    self.policy.lease_time(),
                    min(free, self.policy.batch),
                )
        except Exception:  # database briefly unavailable: try again at the next poll
            log.exception("claiming voicemail deliveries failed")
            return False
        for ident in claimed:
            task = asyncio.create_task(self._deliver(ident))
            self._inflight.add(task)
            task.add_done_callback(self._finished)
        return bool(claimed) and len(claimed) == free

    async def _run(self) -> None:
        last_adopt = time.monotonic()
        while True:
            self._wake.clear()
            if await self._claim():
                continue
            if time.monotonic() - last_adopt > self.policy.adopt_interval:
                last_adopt = time.monotonic()
                await self._adopt()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.policy.poll_interval)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()

    async def _deliver(self, ident: str) -> None:
        try:
            await self._attempt(ident)
        except Exception:  # recording the outcome failed: the lease expires and it is retried
            log.exception("voicemail delivery %s: could not record the outcome", ident)

    async def _attempt(self, ident: str) -> None:
        async with self.ctx.sessions() as db:
            delivery = await db.get(vm.Delivery, ident)
            msg = await db.get(vm.Voicemail, delivery.message_id) if delivery else None
            if delivery is None or msg is None:
                return  # the message was deleted meanwhile
            app = await db.get(VoiceApp, msg.app_id)
            account = await db.get(Account, msg.account_id)
        limit = min(self.policy.send_timeout, self.policy.lease * 0.8)
        try:
            if delivery.channel == vm.EMAIL:
                await asyncio.wait_for(self._send_email(delivery, msg, app, account), limit)
            else:
                await asyncio.wait_for(self._send_webhook(delivery, msg), limit)
        except SendError as exc:
            now = time.monotonic()
            # Sends that were in flight together fail together: they open one pause, not many.
            if exc.unreachable and delivery.channel == vm.EMAIL and now >= self._smtp_paused_until:
                self._smtp_outages += 1
                self._smtp_paused_until = now + self.policy.delay(self._smtp_outages)
            await self._failed(delivery, exc.detail, exc.refused)
            return
        except FileNotFoundError:
            await self._failed(delivery, "the recording's audio file is missing", True, final=True)
            return
        except TimeoutError:
            await self._failed(delivery, f"no answer within {limit:g} s", False)
            return
        if delivery.channel == vm.EMAIL:
            self._smtp_outages = 0
            self._smtp_paused_until = 0.0
        await self._delivered(delivery)

    async def _send_email(
        self,
        delivery: vm.Delivery,
        msg: vm.Voicemail,
        app: VoiceApp | None,
        account: Account | None,
    ) -> None:
        if self.smtp is None:
            raise SendError("SMTP is not configured on this node")
        path = files_of(self.ctx).wav_path(msg.audio_key)
        wav = await asyncio.to_thread(path.read_bytes)
        mail = email.compose(
            self.smtp,
            delivery.target,
            delivery.delivery_id,
            msg,
            wav,
            account.timezone if account else "UTC",
            app.name if app else msg.app_id,
        )
        assert self._smtp_sessions is not None
        await self._smtp_sessions.send(mail, self.policy.send_timeout)

    async def _send_webhook(self, delivery: vm.Delivery, msg: vm.Voicemail) -> None:
        assert self._http is not None
        view = message_view(self.ctx, msg, [])
        view.pop("delivery_state", None)
        event: dict[str, Any] = {
            "event": "voicemail.new",
            "delivery_id": delivery.delivery_id,
            "message": view,
        }
        # Checked again at every send (a name may resolve elsewhere than when it was saved),
        # and posted to the very address that was checked.
        target = await webhook.pinned_target(
            delivery.target, self.ctx.settings.allow_private_webhooks
        )
        await webhook.post(self._http, target, self.webhook_key, delivery.delivery_id, event)

    async def _close_attempt(self, db: AsyncSession, ident: str, outcome: str, error: str) -> None:
        latest = await db.scalar(
            select(func.max(vm.DeliveryAttempt.attempt_id)).where(
                vm.DeliveryAttempt.delivery_id == ident
            )
        )
        if latest is not None:
            await db.execute(
                update(vm.DeliveryAttempt)
                .where(vm.DeliveryAttempt.attempt_id == latest)
                .values(outcome=outcome, error=error[:2000])
            )

    async def _delivered(self, delivery: vm.Delivery) -> None:
        now = utcnow()
        async with self._writing, self.ctx.sessions() as db, db.begin():
            await db.execute(
                update(vm.Delivery)
                .where(vm.Delivery.delivery_id == delivery.delivery_id)
                .values(
                    state=vm.DELIVERED,
                    delivered_at=now,
                    lease_until=None,
                    last_error="",
                )
                .execution_options(synchronize_session=False)
            )
            await self._close_attempt(db, delivery.delivery_id, vm.DELIVERED, "")
        log.info(
            "voicemail %s delivered by %s to %s",
            delivery.message_id,
            delivery.channel,
            delivery.target,
        )

    async def _failed(
        self, delivery: vm.Delivery, error: str, refused: bool, final: bool = False
    ) -> None:
        now = utcnow()
        refused_since = delivery.refused_since or (now if refused else None)
        deadline = delivery.give_up_at
        if refused and refused_since is not None:
            deadline = min(
                deadline, refused_since + timedelta(seconds=self.policy.refused_retry_for)
            )
        values: dict[str, Any] = {
            "last_error": error[:2000],
            "lease_until": None,
            "refused_since": refused_since,
        }
        if final or now >= deadline:
            values["state"] = vm.FAILED
            outcome = vm.FAILED
        else:
            delay = timedelta(seconds=self.policy.delay(delivery.attempts))
            # The last try falls on the deadline itself: retries span the whole window.
            values.update(state=vm.PENDING, next_attempt_at=min(now + delay, deadline))
            outcome = "retry"
        async with self._writing, self.ctx.sessions() as db, db.begin():
            # Only while the lease is ours: if it expired, another node owns the delivery now.
            await db.execute(
                update(vm.Delivery)
                .where(
                    vm.Delivery.delivery_id == delivery.delivery_id,
                    vm.Delivery.state == vm.SENDING,
                    vm.Delivery.lease_owner == self.owner,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            await self._close_attempt(db, delivery.delivery_id, outcome, error)
        log.warning(
            "voicemail %s by %s to %s: attempt %d failed (%s): %s",
            delivery.message_id,
            delivery.channel,
            delivery.target,
            delivery.attempts,
            outcome,
            error,
        )
