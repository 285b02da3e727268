"""What the layers of one node share: settings, database, signers, audio and speech services.

Built once at start-up by the API's lifespan; the layers installed after it (delivery, calls)
fill in their own handles. It sits above the engine, audio and store, and below every layer
that serves (api, delivery, calls), none of which it imports when it runs.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from openivr.apps.promptaudio import PromptSounds
from openivr.audio.cache import RenderCache
from openivr.audio.tts import SpeechEngine
from openivr.guard.addresses import Networks
from openivr.guard.events import SecurityLog
from openivr.guard.guessing import GuessingGuard, GuessPolicy
from openivr.metrics import NodeMetrics
from openivr.security import TokenSigner, UrlSigner
from openivr.settings import Settings
from openivr.store.audiostore import AudioStore
from openivr.store.standing import StandingReader

if TYPE_CHECKING:
    from openivr.apps.callbacks.schema import CallbackPlacer
    from openivr.calls.driver import Transferring
    from openivr.calls.layer import CallService
    from openivr.calls.recordings import CallRecordings
    from openivr.calls.records import CallLog
    from openivr.delivery.policy import DeliveryPolicy
    from openivr.delivery.worker import DeliveryWorker
    from openivr.processes import MediaWorkers
    from openivr.sip.server import SipServer


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
    audio_store: AudioStore
    speech: SpeechEngine
    render_cache: RenderCache
    sounds: PromptSounds  # what a prompt sounds like: custom message or default in a voice
    # Filled in by the layers that run them; None while a layer is off (e.g. --sip-port 0).
    delivery_policy: DeliveryPolicy | None = None
    delivery_worker: DeliveryWorker | None = None
    transfer: Transferring | None = None
    sip_server: SipServer | None = None
    call_log: CallLog | None = None
    calls: CallService | None = None
    # Places callbacks: the calls layer here, or (with --workers) a media process through it.
    callbacks: CallbackPlacer | None = None
    recordings: CallRecordings | None = None  # the calls layer's: recordings of live calls
    # The API process of `openivr serve --workers N`: its media processes (calls run there).
    media_workers: MediaWorkers | None = None
    # Set when the node was told to stop: calls drain, /healthz says so, the API still answers.
    stopping: bool = False

    @classmethod
    def build(
        cls, settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
    ) -> ServerContext:
        """Context with signers keyed from the node's secret and the node's audio services."""
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
        store = AudioStore(settings.audio_dir)
        speech = SpeechEngine()
        cache = RenderCache(settings.audio_dir / "rendered", speech)
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
            audio_store=store,
            speech=speech,
            render_cache=cache,
            sounds=PromptSounds(store, cache),
        )
        context.metrics.ctx = context
        return context
