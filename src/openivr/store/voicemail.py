"""Voicemail messages, their delivery outbox and each delivery attempt: models and queries."""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from openivr.store.models import Base, UtcDateTime, utcnow

_ALNUM = string.ascii_lowercase + string.digits

# Delivery states. `sending` carries a lease; an expired lease means the sender died mid-send.
PENDING = "pending"
SENDING = "sending"
DELIVERED = "delivered"
FAILED = "failed"
NOT_CONFIGURED = "not_configured"
DELIVERY_STATES = (PENDING, SENDING, DELIVERED, FAILED, NOT_CONFIGURED)
EMAIL = "email"
WEBHOOK = "webhook"


def message_id() -> str:
    """A voicemail message id like VMk2m9x0a1bq."""
    return "VM" + "".join(secrets.choice(_ALNUM) for _ in range(10))


def delivery_id() -> str:
    """A delivery id like DLk2m9x0a1bqz3x8; also the stable part of its e-mail Message-ID."""
    return "DL" + "".join(secrets.choice(_ALNUM) for _ in range(14))


class Voicemail(Base):
    """A message a caller left in a mailbox app; its WAV lives in the audio store."""

    __tablename__ = "voicemail"
    __table_args__ = (Index("ix_voicemail_app_created", "app_id", "created_at"),)
    message_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("account.account_id", ondelete="CASCADE"), index=True
    )
    app_id: Mapped[str] = mapped_column(ForeignKey("voiceapp.app_id", ondelete="CASCADE"))
    caller: Mapped[str] = mapped_column(String(100), default="")
    dialed: Mapped[str] = mapped_column(String(100), default="")
    call_id: Mapped[str] = mapped_column(String(300), default="")
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    # Path of the WAV relative to the audio store root, e.g. voicemail/<acc>/<app>/<msg>.wav.
    audio_key: Mapped[str] = mapped_column(String(300))
    is_read: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Delivery(Base):
    """One outbox entry: a message to send to one channel (e-mail or webhook)."""

    __tablename__ = "voicemail_delivery"
    __table_args__ = (Index("ix_voicemail_delivery_due", "state", "next_attempt_at"),)
    delivery_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("voicemail.message_id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(2000), default="")
    state: Mapped[str] = mapped_column(String(20), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    lease_owner: Mapped[str] = mapped_column(String(40), default="")
    # When the receiver first refused outright (SMTP 5xx, HTTP 4xx): such refusals are
    # retried only for a bounded window from here.
    refused_since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    give_up_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DeliveryAttempt(Base):
    """One try to send a delivery, and what came of it."""

    __tablename__ = "voicemail_delivery_attempt"
    attempt_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("voicemail_delivery.delivery_id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(20), default="")
    error: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class MessageFilter:
    """Which messages of a mailbox a listing shows."""

    unread_only: bool = False
    since: datetime | None = None
    until: datetime | None = None
    caller: str = ""


async def message_count(sessions: async_sessionmaker[AsyncSession], app_id: str) -> int:
    """How many messages a mailbox holds (for "mailbox full" checks)."""
    async with sessions() as db:
        count = await db.scalar(
            select(func.count()).select_from(Voicemail).where(Voicemail.app_id == app_id)
        )
    return int(count or 0)


async def list_messages(
    db: AsyncSession, app_id: str, which: MessageFilter, limit: int, offset: int
) -> tuple[list[Voicemail], int]:
    """A page of a mailbox's messages, newest first, and how many match in all."""
    conds = [Voicemail.app_id == app_id]
    if which.unread_only:
        conds.append(Voicemail.is_read.is_(False))
    if which.since is not None:
        conds.append(Voicemail.created_at >= which.since)
    if which.until is not None:
        conds.append(Voicemail.created_at <= which.until)
    if which.caller:
        conds.append(Voicemail.caller == which.caller)
    total = await db.scalar(select(func.count()).select_from(Voicemail).where(*conds))
    rows = (
        await db.scalars(
            select(Voicemail)
            .where(*conds)
            .order_by(Voicemail.created_at.desc(), Voicemail.message_id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return list(rows), int(total or 0)


async def deliveries_of(db: AsyncSession, message_ids: Sequence[str]) -> dict[str, list[Delivery]]:
    """The deliveries of some messages, by message id, oldest first."""
    out: dict[str, list[Delivery]] = {m: [] for m in message_ids}
    if not message_ids:
        return out
    rows = (
        await db.scalars(
            select(Delivery)
            .where(Delivery.message_id.in_(list(message_ids)))
            .order_by(Delivery.created_at, Delivery.channel)
        )
    ).all()
    for d in rows:
        out[d.message_id].append(d)
    return out


async def attempts_of(
    db: AsyncSession, delivery_ids: Sequence[str], per_delivery: int = 20
) -> dict[str, list[DeliveryAttempt]]:
    """The latest attempts of some deliveries, oldest first within each."""
    out: dict[str, list[DeliveryAttempt]] = {d: [] for d in delivery_ids}
    if not delivery_ids:
        return out
    rows = (
        await db.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(list(delivery_ids)))
            .order_by(DeliveryAttempt.attempt_id)
        )
    ).all()
    for a in rows:
        out[a.delivery_id].append(a)
    return {k: v[-per_delivery:] for k, v in out.items()}


def _due(now: datetime) -> object:
    # Due: pending and its time has come, or "sending" whose sender's lease ran out.
    return or_(
        and_(Delivery.state == PENDING, Delivery.next_attempt_at <= now),
        and_(Delivery.state == SENDING, Delivery.lease_until < now),
    )


async def claim_due(
    sessions: async_sessionmaker[AsyncSession],
    channels: Sequence[str],
    owner: str,
    lease: timedelta,
    batch: int,
) -> list[str]:
    """Claim up to `batch` due deliveries for this node; each is claimed by one node only."""
    if not channels:
        return []
    now = utcnow()
    async with sessions() as db:
        candidates = (
            await db.scalars(
                select(Delivery.delivery_id)
                .where(Delivery.channel.in_(list(channels)), _due(now))  # type: ignore[arg-type]
                .order_by(Delivery.next_attempt_at)
                .limit(batch)
            )
        ).all()
    claimed: list[str] = []
    if not candidates:
        return claimed
    # Compare-and-set on the same condition, in one transaction and in id order (so nodes
    # lock rows in the same order): of several nodes racing for a row, one update wins
    # (PostgreSQL re-checks the WHERE after the row lock; SQLite serialises writers).
    async with sessions() as db, db.begin():
        for ident in sorted(candidates):
            result = await db.execute(
                update(Delivery)
                .where(Delivery.delivery_id == ident, _due(now))  # type: ignore[arg-type]
                .values(
                    state=SENDING,
                    lease_until=now + lease,
                    lease_owner=owner,
                    attempts=Delivery.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) == 1:
                db.add(DeliveryAttempt(delivery_id=ident, started_at=now))
                claimed.append(ident)
    return claimed


async def release_not_configured(sessions: async_sessionmaker[AsyncSession], channel: str) -> int:
    """Turn a channel's `not_configured` deliveries into pending ones (it is configured now)."""
    async with sessions() as db, db.begin():
        result = await db.execute(
            update(Delivery)
            .where(Delivery.channel == channel, Delivery.state == NOT_CONFIGURED)
            .values(state=PENDING, next_attempt_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return int(getattr(result, "rowcount", 0) or 0)


async def remove_message(db: AsyncSession, message_id: str) -> None:
    """Delete a message's row with its deliveries and attempts (the caller commits)."""
    ids = (
        await db.scalars(select(Delivery.delivery_id).where(Delivery.message_id == message_id))
    ).all()
    if ids:
        await db.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(ids)))
    await db.execute(delete(Delivery).where(Delivery.message_id == message_id))
    await db.execute(delete(Voicemail).where(Voicemail.message_id == message_id))
