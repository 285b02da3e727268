"""One `openivr serve` node: the API plus the layers that extend it."""

from __future__ import annotations

from starlette.types import ASGIApp

from openivr.api.app import Extension, asgi
from openivr.settings import Settings

EXTENSIONS: tuple[Extension, ...] = ()


def build_asgi(settings: Settings) -> ASGIApp:
    """The node's ASGI application with every layer installed."""
    return asgi(settings, EXTENSIONS)
