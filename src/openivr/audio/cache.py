"""The rendered-speech cache: each (voice, text, engine version) is synthesised once, ever.

Entries live on disk as PreparedAudio files named by a sha256 of the key, with a small in-memory
LRU in front. A miss renders exactly once even when many threads of one process (a lock per
key) and several processes (an fcntl lock file beside the entry) ask for it at the same time;
asyncio callers share one in-flight render per key.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import threading
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from openivr.audio.normalise import normalise
from openivr.audio.prepared import PreparedAudio, PreparedAudioMissing, prepare
from openivr.audio.wav import PcmAudio


class Synthesizer(Protocol):
    """What the cache needs of a speech engine (tts.SpeechEngine is one)."""

    version: str

    def check(self, text: str, voice: str) -> object:
        """Raise (e.g. TtsError) if the engine would refuse this request."""
        ...

    def synthesize(self, text: str, voice: str) -> tuple[NDArray[np.int16], int]:
        """Speak text in an app voice: mono int16 samples and their sample rate."""
        ...


class _KeyLock:
    """A lock for one cache key; weakly held so idle keys cost nothing."""

    def __init__(self) -> None:
        self.lock = threading.Lock()


class RenderCache:
    """Speech rendered to prompt audio, cached on disk and in memory."""

    def __init__(
        self, directory: str | os.PathLike[str], engine: Synthesizer, memory_entries: int = 256
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.engine = engine
        self.memory_entries = memory_entries
        self._memory: OrderedDict[str, PreparedAudio] = OrderedDict()
        self._memory_lock = threading.Lock()
        self._key_locks: weakref.WeakValueDictionary[str, _KeyLock] = weakref.WeakValueDictionary()
        self._key_locks_lock = threading.Lock()
        self._inflight: dict[tuple[int, str], asyncio.Task[PreparedAudio]] = {}

    def key(self, voice: str, text: str) -> str:
        """The cache key of a text in a voice with this engine version."""
        material = json.dumps([voice, text, self.engine.version], ensure_ascii=False)
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def stem(self, key: str) -> Path:
        """The path stem (without .wav/.ulaw/.alaw) of an entry on disk."""
        return self.directory / key[:2] / key

    def cached(self, voice: str, text: str) -> PreparedAudio | None:
        """The entry if it is already rendered, without rendering it."""
        key = self.key(voice, text)
        return self._memory_get(key) or self._disk_get(key)

    def render(self, voice: str, text: str) -> PreparedAudio:
        """The prompt audio of text spoken in voice, rendering it only on a miss."""
        key = self.key(voice, text)
        hit = self._memory_get(key)
        if hit is not None:
            return hit
        # Refuse bad requests before any lock file or folder is made for them.
        self.engine.check(text, voice)
        return self._render_key(key, voice, text)

    async def render_async(self, voice: str, text: str) -> PreparedAudio:
        """render() for asyncio: runs a miss in a thread; concurrent awaits share one render."""
        key = self.key(voice, text)
        hit = self._memory_get(key)
        if hit is not None:
            return hit
        self.engine.check(text, voice)
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        task = self._inflight.get(slot)
        if task is None:
            task = loop.create_task(asyncio.to_thread(self._render_key, key, voice, text))
            self._inflight[slot] = task
            task.add_done_callback(lambda _done: self._inflight.pop(slot, None))
        # shield: one caller giving up (cancelled) must not cancel the render the others await.
        return await asyncio.shield(task)

    def _render_key(self, key: str, voice: str, text: str) -> PreparedAudio:
        hit = self._memory_get(key)
        if hit is not None:
            return hit
        with self._key_locks_lock:
            key_lock = self._key_locks.get(key)
            if key_lock is None:
                key_lock = _KeyLock()
                self._key_locks[key] = key_lock
        with key_lock.lock:
            # Another thread may have finished this key while we waited.
            found = self._memory_get(key) or self._disk_get(key)
            if found is not None:
                return found
            stem = self.stem(key)
            stem.parent.mkdir(parents=True, exist_ok=True)
            # The lock file stays: deleting it would let a waiter lock an unlinked inode while
            # a newcomer locks a fresh file, and both would render.
            fd = os.open(f"{stem}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                found = self._disk_get(key)  # another process may have rendered it meanwhile
                if found is None:
                    samples, rate = self.engine.synthesize(text, voice)
                    pcm8k = normalise(PcmAudio(np.asarray(samples).reshape(-1, 1), rate))
                    found = prepare(pcm8k, stem)
                    self._memory_put(key, found)
                return found
            finally:
                os.close(fd)  # closing releases the flock

    def _memory_get(self, key: str) -> PreparedAudio | None:
        with self._memory_lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
            return found

    def _memory_put(self, key: str, audio: PreparedAudio) -> None:
        with self._memory_lock:
            self._memory[key] = audio
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_entries:
                self._memory.popitem(last=False)

    def _disk_get(self, key: str) -> PreparedAudio | None:
        try:
            found = PreparedAudio.load(self.stem(key))
        except PreparedAudioMissing:
            return None
        self._memory_put(key, found)
        return found
