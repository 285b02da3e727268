"""What every request handler of one node shares: settings, database, signers."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from openivr.api.viewcache import ViewCache
from openivr.guard.addresses import Networks
from openivr.guard.events import SecurityLog
from openivr.guard.guessing import GuessingGuard, GuessPolicy
from openivr.metrics import NodeMetrics
from openivr.security import TokenSigner, UrlSigner
from openivr.settings import Settings
from openivr.store.standing import StandingReader


@dataclass
class ServerContext:
    """The node's shared state, built once at start-up."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tokens: TokenSigner
    urls: UrlSigner
    standing: StandingReader
    security: SecurityLog
    guard: GuessingGuard
    trusted: Networks
    metrics: NodeMetrics
    metrics_networks: Networks
    services: dict[str, Any] = field(default_factory=dict)
    voiceapp_views: ViewCache = field(default_factory=ViewCache)
    # Set when the node was told to stop: calls drain, /healthz says so, the API still answers.
    stopping: bool = False

    @classmethod
    def build(
        cls, settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
    ) -> ServerContext:
        """Context with signers keyed from the node's secret."""
        secret = settings.signing_secret()
        policy = GuessPolicy(
            failures=settings.auth_failures,
            window=settings.auth_window,
            ban_seconds=settings.auth_ban_seconds,
            ban_max_seconds=settings.auth_ban_max_seconds,
        )
        security = SecurityLog(
            sessions,
            settings.node_name or socket.gethostname(),
            retention_days=settings.security_event_days,
            ban_memory=policy.memory,
        )
        node = settings.node_name or socket.gethostname()
        context = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            tokens=TokenSigner(
                secret,
                settings.token_audience,
                settings.access_token_seconds,
                settings.refresh_token_seconds,
            ),
            urls=UrlSigner(secret, settings.audio_url_seconds),
            standing=StandingReader(engine),
            security=security,
            guard=GuessingGuard(sessions, security, policy),
            trusted=Networks.parse(settings.trusted_networks),
            metrics=NodeMetrics(node),
            metrics_networks=Networks.parse(settings.metrics_networks, "metrics_networks"),
        )
        context.metrics.ctx = context
        return context
