"""One `openivr serve` node: the API plus the layers that extend it."""

from __future__ import annotations

from starlette.types import ASGIApp

from openivr.api.app import Extension, asgi
from openivr.calls import extension as calls
from openivr.delivery import extension as delivery
from openivr.settings import Settings

# Order matters: delivery first (voicemail hand-off), then the SIP server that uses it.
EXTENSIONS: tuple[Extension, ...] = (delivery.install, calls.install)


def build_asgi(settings: Settings) -> ASGIApp:
    """The node's ASGI application with every layer installed."""
    return asgi(settings, EXTENSIONS)
