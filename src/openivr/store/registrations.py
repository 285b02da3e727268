"""Where users' SIP phones are registered: one row per (user, contact), shared by every node."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from openivr.store.models import Base, User, UtcDateTime, utcnow


class Registration(Base):
    """One registered device (binding) of a user, valid until `expires_at`."""

    __tablename__ = "sip_registration"
    __table_args__ = (UniqueConstraint("user_id", "contact", name="uq_registration_contact"),)
    registration_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("user_.user_id", ondelete="CASCADE"), index=True
    )
    contact: Mapped[str] = mapped_column(String(500))
    # Where the REGISTER came from: calls go there (the Contact may be a private address).
    source: Mapped[str] = mapped_column(String(100), default="")
    # UDP, or TCP: then calls go over the connection the REGISTER came on while it is open.
    transport: Mapped[str] = mapped_column(String(8), default="UDP")
    call_id: Mapped[str] = mapped_column(String(200), default="")
    cseq: Mapped[int] = mapped_column(Integer, default=0)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    # Path (RFC 3327) of proxies the REGISTER came through, comma-separated: calls to the
    # phone carry it as their Route, so they reach it the way its REGISTER came.
    path: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


async def live_registrations(
    db: AsyncSession, user_id: str, now: datetime | None = None
) -> list[Registration]:
    """A user's registrations that have not expired, oldest first."""
    rows = await db.scalars(
        select(Registration)
        .where(Registration.user_id == user_id, Registration.expires_at > (now or utcnow()))
        .order_by(Registration.registration_id)
    )
    return list(rows.all())


async def registered_users(
    db: AsyncSession, account_id: str, now: datetime | None = None
) -> frozenset[str]:
    """The users of an account with at least one phone registered now."""
    rows = await db.scalars(
        select(Registration.user_id)
        .join(User, User.user_id == Registration.user_id)
        .where(User.account_id == account_id, Registration.expires_at > (now or utcnow()))
        .distinct()
    )
    return frozenset(rows.all())


async def save_registration(
    db: AsyncSession,
    *,
    user_id: str,
    contact: str,
    source: str,
    call_id: str,
    cseq: int,
    user_agent: str,
    expires_at: datetime,
    path: str = "",
    transport: str = "UDP",
) -> None:
    """Add or refresh one binding."""
    row = await db.scalar(
        select(Registration).where(Registration.user_id == user_id, Registration.contact == contact)
    )
    if row is None:
        row = Registration(user_id=user_id, contact=contact)
        db.add(row)
    row.source = source
    row.call_id = call_id
    row.cseq = cseq
    row.user_agent = user_agent[:200]
    row.path = path
    row.transport = transport
    row.expires_at = expires_at
    row.updated_at = utcnow()


async def remove_registration(db: AsyncSession, user_id: str, contact: str) -> None:
    """Drop one binding (Expires: 0)."""
    await db.execute(
        delete(Registration).where(Registration.user_id == user_id, Registration.contact == contact)
    )


async def remove_all_registrations(db: AsyncSession, user_id: str) -> None:
    """Drop every binding of a user (Contact: *)."""
    await db.execute(delete(Registration).where(Registration.user_id == user_id))


async def purge_expired(db: AsyncSession, now: datetime | None = None) -> int:
    """Delete expired bindings; returns how many."""
    result = await db.execute(
        delete(Registration).where(Registration.expires_at <= (now or utcnow()))
    )
    return int(getattr(result, "rowcount", 0) or 0)
