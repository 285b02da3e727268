"""SQLAlchemy models: everything a user configured or a caller left."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of all tables."""


class Account(Base):
    """A customer account; owns users, apps, prompts and numbers."""

    __tablename__ = "account"
    account_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(20), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    caller_id_mode: Mapped[str] = mapped_column(String(20), default="caller")
    # Which calls are recorded: off, all, inbound, outbound, selected (numbers' and users'
    # record_calls say which).
    call_recording: Mapped[str] = mapped_column(String(20), default="off")
    # Bumped in the transaction of every change to the account's apps, users and prompts
    # (store/revision.py), so nodes can keep a call snapshot until it changes.
    config_revision: Mapped[int] = mapped_column(Integer, default=0)
    # The record code the account's next prompt gets: codes are never handed out twice, so a
    # number written down for a deleted prompt never records over another one.
    next_record_code: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class User(Base):
    """A person of an account who can log in and be called."""

    __tablename__ = "user_"
    __table_args__ = (UniqueConstraint("account_id", "extension", name="uq_user_extension"),)
    user_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("account.account_id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    fname: Mapped[str] = mapped_column(String(100), default="")
    lname: Mapped[str] = mapped_column(String(100), default="")
    user_type: Mapped[str] = mapped_column(String(20), default="regular")
    extension: Mapped[str] = mapped_column(String(10))
    phnum: Mapped[str] = mapped_column(String(20), default="")
    sip_uri: Mapped[str] = mapped_column(String(300), default="")
    sip_password: Mapped[str] = mapped_column(Text, default="")
    record_calls: Mapped[str] = mapped_column(String(3), default="no")  # yes/no, for `selected`
    token_generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RefreshToken(Base):
    """An issued refresh token; single use."""

    __tablename__ = "refresh_token"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("user_.user_id", ondelete="CASCADE"), index=True
    )
    generation: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class VoiceApp(Base):
    """A voice app (ivr, mailbox, sysprompt); type-specific settings live in `config`."""

    __tablename__ = "voiceapp"
    __table_args__ = (UniqueConstraint("account_id", "shortcode", name="uq_voiceapp_shortcode"),)
    app_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("account.account_id", ondelete="CASCADE"), index=True
    )
    app_type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    shortcode: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Prompt(Base):
    """A prompt of an app: standard (from the catalogue) or custom; may carry a message."""

    __tablename__ = "prompt"
    __table_args__ = (UniqueConstraint("account_id", "record_code", name="uq_prompt_record_code"),)
    prompt_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("account.account_id", ondelete="CASCADE"), index=True
    )
    app_id: Mapped[str] = mapped_column(
        ForeignKey("voiceapp.app_id", ondelete="CASCADE"), index=True
    )
    prompt_type: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(40), default="")
    name: Mapped[str] = mapped_column(String(200))
    # What a user keys in after dialling *22 to record the message by phone (store/voiceapps.py
    # `take_record_codes`).
    record_code: Mapped[int] = mapped_column(Integer)
    # The custom message, if any: its audio lives in the audio store under `message_key`.
    message_key: Mapped[str] = mapped_column(String(200), default="")
    message_source: Mapped[str] = mapped_column(String(20), default="")
    message_text: Mapped[str] = mapped_column(Text, default="")
    message_voice: Mapped[str] = mapped_column(String(20), default="")
    file_name: Mapped[str] = mapped_column(String(300), default="")
    audio_length: Mapped[float] = mapped_column(Float, default=0.0)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    message_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class PhoneNumber(Base):
    """A phone number the server answers for, and where its calls go."""

    __tablename__ = "phonenumber"
    phnum: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("account.account_id", ondelete="CASCADE"), index=True
    )
    connect_to_type: Mapped[str] = mapped_column(String(20), default="")
    connect_to: Mapped[Any] = mapped_column(JSON, nullable=True)
    record_calls: Mapped[str] = mapped_column(String(3), default="no")  # yes/no, for `selected`
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Team(Base):
    """A team (the hosted API's "call service group"): members rung together or in turn."""

    __tablename__ = "team"
    team_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("account.account_id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # members, strategy, ring_seconds, max_seconds, no_answer (apps/teams/schema.py)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The member who answered the team's last call, where `rotate` starts after. Written with
    # a Core UPDATE by whichever node bridged the call; not configuration (no version bump).
    last_answered: Mapped[str] = mapped_column(String(20), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Schedule(Base):
    """Opening hours: weekly intervals, closed dates and special days in an IANA time zone."""

    __tablename__ = "schedule"
    schedule_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("account.account_id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # timezone, weekly, closed_dates, special (apps/schedules/schema.py)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CallRecord(Base):
    """One call: who called what, where it went, what was pressed, how it ended."""

    __tablename__ = "call_record"
    record_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(200), index=True)
    account_id: Mapped[str | None] = mapped_column(String(20), index=True, nullable=True)
    from_number: Mapped[str] = mapped_column(String(200), default="")
    to_number: Mapped[str] = mapped_column(String(200), default="")
    node: Mapped[str] = mapped_column(String(100), default="")
    apps: Mapped[list[str]] = mapped_column(JSON, default=list)
    keys: Mapped[str] = mapped_column(String(500), default="")
    outcome: Mapped[str] = mapped_column(String(40), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    transfers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    sip_status: Mapped[int] = mapped_column(Integer, default=0)
    ended_by: Mapped[str] = mapped_column(String(20), default="")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class CallRecordingRow(Base):
    """A recorded call's file (under the recordings dir) and how the recording went."""

    __tablename__ = "call_recording"
    __table_args__ = (Index("ix_call_recording_account_created", "account_id", "created_at"),)
    recording_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(20))
    call_id: Mapped[str] = mapped_column(String(200), index=True)
    user_id: Mapped[str | None] = mapped_column(String(20), nullable=True)
    node: Mapped[str] = mapped_column(String(100), default="")
    # recording, complete, failed (`failure` says why), interrupted (the node died meanwhile:
    # what was written up to then is kept)
    status: Mapped[str] = mapped_column(String(20), default="recording")
    failure: Mapped[str] = mapped_column(Text, default="")
    codec: Mapped[str] = mapped_column(String(10), default="")
    channels: Mapped[int] = mapped_column(Integer, default=1)
    file_key: Mapped[str] = mapped_column(String(300))  # path under the recordings dir
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class SecurityEvent(Base):
    """A failed password, a refusal without checking one, or a ban (guard/; listed to admins).

    Failures are also the counters of guessing: the guard counts an address's and a user's
    recent rows of kind `failure`, so every node of a cluster sees the same counts."""

    __tablename__ = "security_event"
    __table_args__ = (
        Index("ix_security_event_source_at", "source", "at"),
        Index("ix_security_event_username_at", "channel", "username", "at"),
        Index("ix_security_event_account_at", "account_id", "at"),
        Index("ix_security_event_at", "at"),
    )
    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))  # failure, refusal, ban
    reason: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))  # sip, api
    # The address as counted: an IPv4 address, or the /64 network of an IPv6 address.
    source: Mapped[str] = mapped_column(String(64))
    # The user name as presented (SIP digest username, login e-mail), known user or not.
    username: Mapped[str] = mapped_column(String(200), default="")
    user_id: Mapped[str | None] = mapped_column(String(20), nullable=True)
    account_id: Mapped[str | None] = mapped_column(String(20), nullable=True)
    node: Mapped[str] = mapped_column(String(100), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SecurityBan(Base):
    """An address or a user name that guessed too often, and until when it is refused."""

    __tablename__ = "security_ban"
    # "addr:<source>" or "<channel>:<username>".
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    banned_at: Mapped[datetime] = mapped_column(UtcDateTime)
    until: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    # How many bans in a row (each within a day of the last one's end): the length doubles.
    level: Mapped[int] = mapped_column(Integer, default=1)
