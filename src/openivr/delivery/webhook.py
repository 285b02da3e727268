"""Voicemail webhooks: a signed JSON POST to the mailbox's webhook_url.

The receiver checks `X-OpenIVR-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body
keyed with `webhook_key(secret)` = SHA-256(b"webhook:" + the node secret), the shared
--secret of the nodes. `X-OpenIVR-Delivery` is the same on every retry of one delivery,
so a receiver can drop repeats.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from openivr.delivery.email import SendError

SIGNATURE_HEADER = "X-OpenIVR-Signature"
DELIVERY_HEADER = "X-OpenIVR-Delivery"


def _address_refusal(address: str, own: set[str]) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return f"{ip} is not a unicast address"
    if ip.is_private:
        return f"{ip} is a private address"
    if str(ip) in own:
        return f"{ip} is this node's own address"
    return None


async def _own_addresses() -> set[str]:
    """The addresses this host's name resolves to (its public ones among them)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(socket.gethostname(), None)
    except OSError:
        return set()
    return {str(info[4][0]) for info in infos}


async def _addresses_of(host: str) -> list[str]:
    """The addresses a URL's host stands for: itself when it is an address, else what it
    resolves to now (OSError when it does not resolve)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return [str(info[4][0]) for info in infos]


async def _refusal_among(host: str, addresses: list[str]) -> str | None:
    own = await _own_addresses()
    for address in addresses:
        reason = _address_refusal(address, own)
        if reason is not None:
            return reason if address == host else f"{host} resolves to {reason}"
    return None


async def target_refusal(url: str, allow_private: bool) -> str | None:
    """Why a webhook may not be posted to this URL (None when it may): its host, or an address
    the host resolves to, is loopback, link-local, private or this node's own, unless the node
    allows private targets (--allow-private-webhooks). A name that does not resolve now is not
    refused here; `pinned_target` checks it again before every delivery."""
    host = urlsplit(url).hostname
    if not host:
        return "names no host"
    if allow_private:
        return None
    try:
        addresses = await _addresses_of(host)
    except OSError:
        return None
    return await _refusal_among(host, addresses)


@dataclass(frozen=True, slots=True)
class PinnedTarget:
    """A webhook URL with the one address it was checked at: the POST connects there and no
    second name lookup happens, so a name that answers a public address to the check and a
    private one to the connection (DNS rebinding) cannot steer the POST inward."""

    url: str
    address: str


async def pinned_target(url: str, allow_private: bool) -> PinnedTarget:
    """Resolve the URL's host once and check every address it gave; SendError (refused) when
    the target may not be posted to, SendError (retried) when the name does not resolve now."""
    host = urlsplit(url).hostname
    if not host:
        raise SendError("webhook_url: names no host", refused=True)
    try:
        addresses = await _addresses_of(host)
    except OSError as exc:
        raise SendError(f"cannot resolve the webhook's host {host}: {exc}") from None
    if not allow_private:
        refusal = await _refusal_among(host, addresses)
        if refusal is not None:
            raise SendError(
                f"webhook_url: {refusal} (--allow-private-webhooks allows it)", refused=True
            )
    return PinnedTarget(url, addresses[0])


def _connect_url(target: PinnedTarget) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL with its host replaced by the pinned address, the Host header and the TLS name
    the receiver expects (its certificate is still checked against the name)."""
    parts = urlsplit(target.url)
    host = parts.hostname or ""
    literal = f"[{target.address}]" if ":" in target.address else target.address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    url = parts._replace(netloc=netloc).geturl()
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return url, {"Host": host_header}, extensions


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
    client: httpx.AsyncClient,
    target: PinnedTarget,
    key: bytes,
    delivery_id: str,
    event: dict[str, Any],
) -> None:
    """POST one event to the pinned address; 2xx is delivered, else SendError (4xx other than
    408/429 is a refusal)."""
    body = body_of(event)
    url, host_header, extensions = _connect_url(target)
    headers = {
        **host_header,
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(key, body),
        DELIVERY_HEADER: delivery_id,
        "User-Agent": "OpenIVR-webhook",
    }
    try:
        response = await client.post(url, content=body, headers=headers, extensions=extensions)
    except httpx.HTTPError as exc:
        raise SendError(f"cannot reach the webhook: {type(exc).__name__}: {exc}") from None
    if 200 <= response.status_code < 300:
        return
    refused = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
    raise SendError(
        f"webhook answered HTTP {response.status_code}: {response.text[:200]}", refused=refused
    )
