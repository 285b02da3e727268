"""Voicemail webhooks: a signed JSON POST to the mailbox's webhook_url.

The receiver checks `X-OpenIVR-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body
keyed with `webhook_key(secret)` = SHA-256(b"webhook:" + the node secret), the shared
--secret of the nodes. `X-OpenIVR-Delivery` is the same on every retry of one delivery,
so a receiver can drop repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from openivr.delivery.email import SendError

SIGNATURE_HEADER = "X-OpenIVR-Signature"
DELIVERY_HEADER = "X-OpenIVR-Delivery"


def webhook_key(secret: bytes) -> bytes:
    """The HMAC key of webhook signatures, derived from the node secret."""
    return hashlib.sha256(b"webhook:" + secret).digest()


def signature(key: bytes, body: bytes) -> str:
    """The signature header's value for a body: sha256=<hex HMAC>."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(key: bytes, body: bytes, header: str) -> bool:
    """Whether a signature header is genuine for this body (for receivers and tests)."""
    return hmac.compare_digest(signature(key, body), header.strip())


def body_of(event: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and posted."""
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


async def post(
    client: httpx.AsyncClient, url: str, key: bytes, delivery_id: str, event: dict[str, Any]
) -> None:
    """POST one event; 2xx is delivered, else SendError (4xx other than 408/429 is a refusal)."""
    body = body_of(event)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(key, body),
        DELIVERY_HEADER: delivery_id,
        "User-Agent": "OpenIVR-webhook",
    }
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise SendError(f"cannot reach the webhook: {type(exc).__name__}: {exc}") from None
    if 200 <= response.status_code < 300:
        return
    refused = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
    raise SendError(
        f"webhook answered HTTP {response.status_code}: {response.text[:200]}", refused=refused
    )
