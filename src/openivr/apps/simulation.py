"""Simulated calls against saved configuration: the transcript and the audio a caller hears."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.apps.promptaudio import PromptSounds
from openivr.audio import tones
from openivr.audio.wav import write_wav
from openivr.engine.config import PromptRef, StaticConfig
from openivr.engine.routing import Reachability
from openivr.engine.simulator import simulate
from openivr.engine.timeline import parse_timeline
from openivr.engine.transcript import Transcript
from openivr.settings import Settings
from openivr.store.registrations import registered_users
from openivr.store.snapshot import AccountSnapshot

RATE = 8000


def _voice_of(snapshot: AccountSnapshot, prompt: PromptRef) -> str:
    app = snapshot.config.app(prompt.app_id)
    return app.voice if app is not None else "en"


def with_default_texts(snapshot: AccountSnapshot, sounds: PromptSounds) -> StaticConfig:
    """The snapshot's config with the words of every default recording filled in."""
    cfg = snapshot.config
    prompts = []
    for ref in cfg.prompts.values():
        if ref.text is None and ref.key:
            ref = replace(ref, text=sounds.text(snapshot, ref, _voice_of(snapshot, ref)))
        prompts.append(ref)
    return cfg.with_prompts(prompts)


async def reachability_now(db: AsyncSession, settings: Settings, account_id: str) -> Reachability:
    """What a real call on this node would find now: its trunk, the phones registered now."""
    return Reachability(
        trunk=bool(settings.sip_trunk), registered=await registered_users(db, account_id)
    )


def run(
    snapshot: AccountSnapshot,
    sounds: PromptSounds,
    app_id: str,
    caller: str,
    dialed: str,
    timeline: Any,
    reachability: Reachability | None = None,
    at: datetime | None = None,
) -> Transcript:
    """Simulate a call with real prompt lengths (renders defaults that are not cached yet), as a
    real call would go with `reachability` (see reachability_now), at the instant `at`
    (opening hours are decided from it)."""
    steps = parse_timeline(timeline)

    def duration(prompt: PromptRef, voice: str) -> float:
        sound = sounds.resolve(snapshot, prompt, voice)
        return sound.audio.duration if sound is not None else 0.0

    config = with_default_texts(snapshot, sounds)
    return simulate(
        config,
        app_id,
        caller,
        dialed,
        steps,
        duration,
        account_id=snapshot.account_id,
        reachability=reachability,
        at=at,
    )


def render_wav(transcript: Transcript, snapshot: AccountSnapshot, sounds: PromptSounds) -> bytes:
    """What the caller heard, in order, with the silences: one 8 kHz mono WAV."""
    parts: list[NDArray[np.int16]] = []
    for segment in transcript.audio:
        samples = int(round(segment.duration * RATE))
        if samples <= 0:
            continue
        piece: NDArray[np.int16]
        if segment.kind == "prompt" and segment.prompt is not None:
            sound = sounds.resolve(snapshot, segment.prompt, segment.voice or "en")
            pcm = sound.audio.pcm if sound is not None else np.zeros(0, dtype=np.int16)
            piece = pcm[:samples]
        elif segment.kind == "beep":
            piece = tones.beep()[:samples]
        elif segment.kind == "ringback":
            cycles = int(segment.duration // 5) + 1
            piece = tones.ringback(cycles)[:samples]
        else:
            piece = np.zeros(samples, dtype=np.int16)
        if len(piece) < samples:
            piece = np.concatenate([piece, np.zeros(samples - len(piece), dtype=np.int16)])
        parts.append(piece)
    audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return write_wav(audio, RATE)
