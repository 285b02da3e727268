"""The audio store: prompt messages as files every node can read (a shared directory)."""

from __future__ import annotations

import secrets
import shutil
import threading
from collections import OrderedDict
from pathlib import Path

from openivr.audio.normalise import normalise
from openivr.audio.prepared import PreparedAudio, prepare
from openivr.audio.wav import PcmAudio
from openivr.durable import write_atomically


class AudioStore:
    """Files under one root: prompts/<prompt_id>/<record_id>.{orig.wav,wav,ulaw,alaw}."""

    def __init__(self, root: Path, cached_messages: int = 128):
        self.root = root
        # Message keys change whenever a message changes, so a loaded message never goes stale.
        self._loaded: OrderedDict[str, PreparedAudio] = OrderedDict()
        self._loaded_lock = threading.Lock()
        self._cached_messages = cached_messages

    def prompt_stem(self, message_key: str) -> Path:
        """Path stem of a prompt message's prepared audio."""
        return self.root / "prompts" / message_key

    def save_prompt_message(
        self, prompt_id: str, original: bytes | None, audio: PcmAudio
    ) -> tuple[str, PreparedAudio]:
        """Normalise and persist a message (and its original upload); returns its key."""
        record_id = secrets.token_hex(6)
        key = f"{prompt_id}/{record_id}"
        stem = self.prompt_stem(key)
        if original is not None:
            write_atomically(stem.with_name(stem.name + ".orig.wav"), original)
        prepared = prepare(normalise(audio), stem)
        return key, prepared

    def save_prepared_message(
        self, prompt_id: str, audio: PreparedAudio
    ) -> tuple[str, PreparedAudio]:
        """Persist already-normalised audio (a TTS rendering) as a prompt's message."""
        record_id = secrets.token_hex(6)
        key = f"{prompt_id}/{record_id}"
        audio.save(self.prompt_stem(key))
        return key, audio

    def has_loaded(self, message_key: str) -> bool:
        """Whether a message is already in memory."""
        return message_key in self._loaded

    def load_prompt_message(self, message_key: str) -> PreparedAudio:
        """The prepared audio of a stored message (kept in memory for the next call)."""
        with self._loaded_lock:
            hit = self._loaded.get(message_key)
            if hit is not None:
                self._loaded.move_to_end(message_key)
                return hit
        audio = PreparedAudio.load(self.prompt_stem(message_key))
        with self._loaded_lock:
            self._loaded[message_key] = audio
            while len(self._loaded) > self._cached_messages:
                self._loaded.popitem(last=False)
        return audio

    def wav_path(self, message_key: str) -> Path:
        """The telephone-ready WAV of a stored message."""
        stem = self.prompt_stem(message_key)
        return stem.with_name(stem.name + ".wav")

    def original_path(self, message_key: str) -> Path:
        """The upload as the user sent it."""
        stem = self.prompt_stem(message_key)
        return stem.with_name(stem.name + ".orig.wav")

    def remove_prompt_message(self, message_key: str) -> None:
        """Delete a replaced message's files (after the database no longer points at them)."""
        stem = self.prompt_stem(message_key)
        for suffix in (".orig.wav", ".wav", ".ulaw", ".alaw"):
            stem.with_name(stem.name + suffix).unlink(missing_ok=True)

    def remove_prompt(self, prompt_id: str) -> None:
        """Delete every file of a deleted prompt."""
        shutil.rmtree(self.root / "prompts" / prompt_id, ignore_errors=True)
