"""Voicemail audio on disk: a sidecar JSON, then the WAV, both fsynced before any row commits."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from openivr.durable import fsync_directory, write_atomically

VOICEMAIL_DIR = "voicemail"


@dataclass(frozen=True)
class Sidecar:
    """What a message's row holds, kept beside its WAV so the row can be rebuilt."""

    message_id: str
    account_id: str
    app_id: str
    caller: str
    dialed: str
    call_id: str
    duration: float
    size_bytes: int
    started_at: str | None
    created_at: str

    def to_json(self) -> bytes:
        """The sidecar file's bytes."""
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Sidecar:
        """Parse a sidecar file; ValueError names what is wrong."""
        try:
            raw: Any = json.loads(data)
        except ValueError as exc:
            raise ValueError(f"sidecar is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError("sidecar is not a JSON object")
        try:
            return cls(
                message_id=str(raw["message_id"]),
                account_id=str(raw["account_id"]),
                app_id=str(raw["app_id"]),
                caller=str(raw.get("caller", "")),
                dialed=str(raw.get("dialed", "")),
                call_id=str(raw.get("call_id", "")),
                duration=float(raw.get("duration", 0.0)),
                size_bytes=int(raw.get("size_bytes", 0)),
                started_at=raw.get("started_at"),
                created_at=str(raw["created_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"sidecar lacks a field: {exc}") from None


class MessageFiles:
    """voicemail/<account>/<app>/<message>.{json,wav} under the shared audio store."""

    def __init__(self, audio_root: Path):
        self.audio_root = audio_root
        self.root = audio_root / VOICEMAIL_DIR

    def key(self, account_id: str, app_id: str, message_id: str) -> str:
        """The WAV's path relative to the audio store (what the row records)."""
        return f"{VOICEMAIL_DIR}/{account_id}/{app_id}/{message_id}.wav"

    def wav_path(self, audio_key: str) -> Path:
        """Absolute path of a message's WAV."""
        return self.audio_root / audio_key

    def _ensure_dir(self, folder: Path) -> None:
        if folder.is_dir():
            return
        folder.mkdir(parents=True, exist_ok=True)
        # New directories must reach the disk too, or a crash could lose the file's entry.
        for d in (folder, folder.parent, folder.parent.parent, self.root):
            fsync_directory(d)

    def write(self, meta: Sidecar, wav: bytes) -> str:
        """Write and fsync the sidecar, then the WAV, then their directory; return the key."""
        key = self.key(meta.account_id, meta.app_id, meta.message_id)
        wav_file = self.wav_path(key)
        self._ensure_dir(wav_file.parent)
        write_atomically(wav_file.with_suffix(".json"), meta.to_json())
        write_atomically(wav_file, wav)
        fsync_directory(wav_file.parent)
        return key

    def remove(self, audio_key: str) -> None:
        """Delete a message's files once its row is gone (sidecar first: no resurrection)."""
        wav_file = self.wav_path(audio_key)
        wav_file.with_suffix(".json").unlink(missing_ok=True)
        wav_file.with_suffix(".deleted").unlink(missing_ok=True)
        wav_file.unlink(missing_ok=True)

    def mark_deleted(self, audio_key: str) -> None:
        """Before a row is deleted: rename the sidecar so a crash cannot bring the message back."""
        wav_file = self.wav_path(audio_key)
        sidecar = wav_file.with_suffix(".json")
        if sidecar.exists():
            os.replace(sidecar, wav_file.with_suffix(".deleted"))
            fsync_directory(wav_file.parent)

    def unmark_deleted(self, audio_key: str) -> None:
        """Undo mark_deleted when the row could not be deleted after all."""
        wav_file = self.wav_path(audio_key)
        marker = wav_file.with_suffix(".deleted")
        if marker.exists():
            os.replace(marker, wav_file.with_suffix(".json"))

    def orphans(self, older_than: float) -> Iterator[tuple[Path, Sidecar | None]]:
        """Sidecars (with their WAV, or None if unreadable) and tombstones older than a bound."""
        if not self.root.is_dir():
            return
        cutoff = time.time() - older_than
        for path in sorted(self.root.glob("*/*/*")):
            if path.suffix not in (".json", ".deleted") or path.name.startswith("."):
                continue
            try:
                if path.stat().st_mtime > cutoff:
                    continue
                if path.suffix == ".deleted":
                    yield path, None
                    continue
                yield path, Sidecar.from_json(path.read_bytes())
            except (OSError, ValueError):
                yield path, None

    def sweep_tmp(self, older_than: float) -> None:
        """Remove half-written temporary files a crash left behind."""
        if not self.root.is_dir():
            return
        cutoff = time.time() - older_than
        for path in self.root.glob("*/*/.*.tmp"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                pass
