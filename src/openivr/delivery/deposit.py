"""The hand-off point: a recorded message goes to disk, into the mailbox and into the outbox."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.audio.wav import write_wav
from openivr.context import ServerContext
from openivr.delivery.messagefiles import MessageFiles, Sidecar
from openivr.delivery.policy import DeliveryPolicy
from openivr.store import voicemail as vm
from openivr.store.models import User, VoiceApp, utcnow

log = logging.getLogger(__name__)
SAMPLE_RATE = 8000


class VoicemailError(ValueError):
    """A deposit that cannot be stored as asked; the message names the argument."""


async def message_count(sessions: async_sessionmaker[AsyncSession], app_id: str) -> int:
    """How many messages a mailbox holds (compare with its max_messages before recording)."""
    return await vm.message_count(sessions, app_id)


def policy_of(ctx: ServerContext) -> DeliveryPolicy:
    """The node's delivery policy (the running worker's, else from the settings)."""
    return ctx.delivery_policy or DeliveryPolicy.from_settings(ctx.settings)


def files_of(ctx: ServerContext) -> MessageFiles:
    """The voicemail files of the node's audio store."""
    return MessageFiles(ctx.settings.audio_dir)


async def plan_deliveries(
    db: AsyncSession,
    ctx: ServerContext,
    app: VoiceApp,
    message_id: str,
    now: datetime,
) -> list[vm.Delivery]:
    """The outbox rows of a new message, from the mailbox's deliver_to and webhook_url."""
    policy = policy_of(ctx)
    give_up = now + timedelta(seconds=policy.retry_for)
    cfg: dict[str, Any] = app.config or {}
    out: list[vm.Delivery] = []

    def row(channel: str, target: str, state: str, error: str = "") -> vm.Delivery:
        return vm.Delivery(
            delivery_id=vm.delivery_id(),
            message_id=message_id,
            channel=channel,
            target=target,
            state=state,
            attempts=0,
            last_error=error,
            next_attempt_at=now,
            lease_owner="",
            give_up_at=give_up,
            created_at=now,
        )

    kind = str(cfg.get("deliver_to") or "")
    details = str(cfg.get("deliver_to_details") or "")
    mail_state = vm.PENDING if ctx.settings.smtp_url else vm.NOT_CONFIGURED
    if kind == "email" and details:
        out.append(row(vm.EMAIL, details, mail_state))
    elif kind == "user" and details:
        user = await db.get(User, details)
        if user is None or user.account_id != app.account_id:
            out.append(row(vm.EMAIL, "", vm.FAILED, f"deliver_to_details: no user {details!r}"))
        else:
            out.append(row(vm.EMAIL, user.email, mail_state))
    webhook = str(cfg.get("webhook_url") or "")
    if webhook:
        out.append(row(vm.WEBHOOK, webhook, vm.PENDING))
    return out


async def _mailbox(db: AsyncSession, account_id: str, app_id: str) -> VoiceApp:
    app = await db.get(VoiceApp, app_id)
    if app is None or app.account_id != account_id:
        raise VoicemailError(f"app_id: no voice app {app_id!r} in account {account_id!r}")
    if app.app_type != "mailbox":
        raise VoicemailError(f"app_id: {app_id!r} is a {app.app_type} app, not a mailbox")
    return app


def _check_pcm(pcm: Any) -> np.ndarray[Any, np.dtype[np.int16]]:
    if not isinstance(pcm, np.ndarray):
        raise VoicemailError(f"pcm: expected a numpy int16 array, got {type(pcm).__name__}")
    if pcm.dtype != np.int16:
        raise VoicemailError(f"pcm: expected int16 samples, got {pcm.dtype}")
    if pcm.ndim != 1:
        raise VoicemailError(f"pcm: expected mono (one dimension), got shape {pcm.shape}")
    if pcm.size == 0:
        raise VoicemailError("pcm: the recording is empty")
    return pcm


async def deposit_voicemail(
    ctx: ServerContext,
    *,
    account_id: str,
    app_id: str,
    caller: str,
    dialed: str,
    pcm: np.ndarray[Any, np.dtype[np.int16]],
    call_id: str,
    started_at: datetime | None = None,
) -> str:
    """Store a message (8 kHz mono int16) in a mailbox and queue its deliveries; its id."""
    samples = _check_pcm(pcm)
    async with ctx.sessions() as db:
        app = await _mailbox(db, account_id, app_id)
    now = utcnow()
    ident = vm.message_id()
    wav = write_wav(samples, SAMPLE_RATE)
    meta = Sidecar(
        message_id=ident,
        account_id=account_id,
        app_id=app_id,
        caller=caller[:100],
        dialed=dialed[:100],
        call_id=call_id[:300],
        duration=samples.size / SAMPLE_RATE,
        size_bytes=len(wav),
        started_at=started_at.isoformat() if started_at else None,
        created_at=now.isoformat(),
    )
    files = files_of(ctx)
    # Durable on disk before the row exists: a crash now leaves files that start-up adopts.
    key = await asyncio.to_thread(files.write, meta, wav)
    await _insert(ctx, app, meta, key)
    wake(ctx)
    return ident


async def _insert(ctx: ServerContext, app: VoiceApp, meta: Sidecar, key: str) -> bool:
    """The message row and its outbox rows in one transaction; False if it already existed."""
    created = datetime.fromisoformat(meta.created_at)
    started = datetime.fromisoformat(meta.started_at) if meta.started_at else None
    try:
        async with ctx.sessions() as db, db.begin():
            db.add(
                vm.Voicemail(
                    message_id=meta.message_id,
                    account_id=meta.account_id,
                    app_id=meta.app_id,
                    caller=meta.caller,
                    dialed=meta.dialed,
                    call_id=meta.call_id,
                    duration=meta.duration,
                    size_bytes=meta.size_bytes,
                    audio_key=key,
                    is_read=False,
                    started_at=started,
                    created_at=created,
                )
            )
            await db.flush()
            for delivery in await plan_deliveries(db, ctx, app, meta.message_id, utcnow()):
                db.add(delivery)
    except IntegrityError:
        # Another node adopted the files between our fsync and commit: the message is stored.
        async with ctx.sessions() as db:
            if await db.get(vm.Voicemail, meta.message_id) is not None:
                return False
        raise
    return True


def wake(ctx: ServerContext) -> None:
    """Tell this node's delivery worker that new work may be due."""
    if ctx.delivery_worker is not None:
        ctx.delivery_worker.wake()


async def adopt_orphans(ctx: ServerContext, older_than: float) -> int:
    """Give rows to messages whose files exist without one; clear half-done deletes. Count."""
    files = files_of(ctx)
    found = await asyncio.to_thread(lambda: list(files.orphans(older_than)))
    await asyncio.to_thread(files.sweep_tmp, max(older_than, 60.0))
    names = [path.with_suffix("").name for path, _ in found]
    known: set[str] = set()
    async with ctx.sessions() as db:
        for i in range(0, len(names), 500):
            chunk = names[i : i + 500]
            known.update(
                (
                    await db.scalars(
                        select(vm.Voicemail.message_id).where(vm.Voicemail.message_id.in_(chunk))
                    )
                ).all()
            )
    adopted = 0
    for path, meta in found:
        stem = path.with_suffix("")
        message = stem.name
        exists = message in known
        wav_file = stem.with_suffix(".wav")
        if path.suffix == ".deleted":
            if exists:
                # The row outlived a failed delete: the message stays, with its sidecar.
                path.replace(stem.with_suffix(".json"))
            else:
                wav_file.unlink(missing_ok=True)
                path.unlink(missing_ok=True)
            continue
        if exists:
            continue
        if meta is None:
            log.warning("voicemail sidecar %s cannot be read; left in place", path)
            continue
        if not wav_file.exists():
            # The crash came before the WAV was written: there is no message to keep.
            path.unlink(missing_ok=True)
            continue
        async with ctx.sessions() as db:
            app = await db.get(VoiceApp, meta.app_id)
        if app is None or app.account_id != meta.account_id:
            log.warning("voicemail %s belongs to a deleted mailbox; left in place", message)
            continue
        key = files.key(meta.account_id, meta.app_id, meta.message_id)
        if await _insert(ctx, app, meta, key):
            adopted += 1
            log.info("adopted voicemail %s from its files", message)
    if adopted:
        wake(ctx)
    return adopted
