"""How a voicemail message and its deliveries are shown: in the API, webhooks and e-mail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from openivr.context import ServerContext
from openivr.store.voicemail import (
    DELIVERED,
    FAILED,
    NOT_CONFIGURED,
    PENDING,
    SENDING,
    Delivery,
    DeliveryAttempt,
    Voicemail,
)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC to the millisecond with a Z, or None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def audio_path(account_id: str, app_id: str, message_id: str) -> str:
    """The API path of a message's WAV (what its audio_url signs)."""
    return f"/account/{account_id}/voiceapp/{app_id}/voicemail/{message_id}/audio"


def signed_audio_url(ctx: ServerContext, msg: Voicemail) -> str:
    """An absolute, signed, expiring URL of the WAV that works without a token."""
    return ctx.settings.base_url + ctx.urls.sign(
        audio_path(msg.account_id, msg.app_id, msg.message_id)
    )


def duration_text(seconds: float) -> str:
    """0:42 or 1:05:09."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def local_time(value: datetime, timezone: str) -> str:
    """A time in an account's IANA timezone, e.g. 2024-05-01 14:03 CEST (UTC if unknown)."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def summary_state(deliveries: list[Delivery]) -> str:
    """One word for a message's deliveries: none, delivered, pending, failed, not_configured."""
    if not deliveries:
        return "none"
    states = {d.state for d in deliveries}
    for state in (FAILED, NOT_CONFIGURED):
        if state in states:
            return state
    if states & {PENDING, SENDING}:
        return PENDING
    return DELIVERED


def delivery_view(d: Delivery, attempts: list[DeliveryAttempt]) -> dict[str, Any]:
    """A delivery as the message metadata shows it, with its recent attempts."""
    return {
        "delivery_id": d.delivery_id,
        "channel": d.channel,
        "target": d.target,
        "state": d.state,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "next_attempt_at": iso(d.next_attempt_at) if d.state in (PENDING, SENDING) else None,
        "delivered_at": iso(d.delivered_at),
        "give_up_at": iso(d.give_up_at),
        "history": [
            {"at": iso(a.started_at), "outcome": a.outcome or "in_progress", "error": a.error}
            for a in attempts
        ],
    }


def message_view(
    ctx: ServerContext,
    msg: Voicemail,
    deliveries: list[Delivery],
    attempts: dict[str, list[DeliveryAttempt]] | None = None,
) -> dict[str, Any]:
    """A message's public metadata; with `attempts` it includes each delivery in detail."""
    view: dict[str, Any] = {
        "message_id": msg.message_id,
        "account_id": msg.account_id,
        "app_id": msg.app_id,
        "caller": msg.caller,
        "dialed": msg.dialed,
        "call_id": msg.call_id,
        "duration": round(msg.duration, 3),
        "size": msg.size_bytes,
        "created": iso(msg.created_at),
        "read": msg.is_read,
        "delivery_state": summary_state(deliveries),
        "audio_url": signed_audio_url(ctx, msg),
    }
    if attempts is not None:
        view["delivery"] = [delivery_view(d, attempts.get(d.delivery_id, [])) for d in deliveries]
    return view
