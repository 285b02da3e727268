"""Prompt audio ready to play: 8 kHz PCM plus its G.711 encodings, kept as files on disk."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from openivr.audio import g711
from openivr.audio.g711 import Codec
from openivr.audio.wav import AudioFormatError, parse_wav, write_wav
from openivr.durable import fsync_directory, write_atomically

SAMPLE_RATE = 8000
SUFFIXES = (".ulaw", ".alaw", ".wav")  # written in this order: .wav last marks a whole entry


class PreparedAudioMissing(FileNotFoundError):
    """No complete prepared audio exists at a path stem."""


@dataclass(frozen=True)
class PreparedAudio:
    """Normalised 8 kHz int16 mono PCM with its µ-law and A-law encodings."""

    pcm: NDArray[np.int16]
    ulaw: bytes
    alaw: bytes
    _frames: dict[str, list[bytes]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.pcm) / SAMPLE_RATE

    def frames(self, codec: Codec) -> list[bytes]:
        """The audio as 20 ms RTP payloads of 160 bytes, the last padded with silence."""
        cached = self._frames.get(codec)
        if cached is None:
            payload = self.ulaw if codec == "PCMU" else self.alaw if codec == "PCMA" else None
            if payload is None:
                raise ValueError(f"unknown G.711 codec {codec!r}; use PCMU or PCMA")
            cached = g711.split_frames(payload, codec)
            self._frames[codec] = cached
        return cached

    def wav_bytes(self) -> bytes:
        """The PCM as a mono 16-bit 8 kHz WAV file."""
        return write_wav(self.pcm, SAMPLE_RATE)

    @classmethod
    def from_pcm(cls, pcm8k: NDArray[np.int16]) -> PreparedAudio:
        """Encode normalised 8 kHz int16 mono samples (in memory only)."""
        pcm = np.ascontiguousarray(pcm8k, dtype=np.int16).reshape(-1)
        return cls(pcm=pcm, ulaw=g711.encode(pcm, "PCMU"), alaw=g711.encode(pcm, "PCMA"))

    def save(self, stem: str | os.PathLike[str]) -> None:
        """Write stem.ulaw, stem.alaw and stem.wav atomically, the .wav last."""
        base = Path(stem)
        base.parent.mkdir(parents=True, exist_ok=True)
        contents = {".ulaw": self.ulaw, ".alaw": self.alaw, ".wav": self.wav_bytes()}
        for suffix in SUFFIXES:
            write_atomically(base.with_name(base.name + suffix), contents[suffix])
        fsync_directory(base.parent)

    @classmethod
    def load(cls, stem: str | os.PathLike[str]) -> PreparedAudio:
        """Read audio saved at a path stem; PreparedAudioMissing if any part is absent."""
        base = Path(stem)
        parts: dict[str, bytes] = {}
        for suffix in SUFFIXES:
            try:
                parts[suffix] = base.with_name(base.name + suffix).read_bytes()
            except FileNotFoundError as exc:
                raise PreparedAudioMissing(f"no prepared audio at {base}{suffix}") from exc
        audio = parse_wav(parts[".wav"])
        if audio.sample_rate != SAMPLE_RATE or audio.channels != 1:
            raise AudioFormatError("bad_header", f"{base}.wav is not 8 kHz mono prepared audio")
        pcm = audio.samples.reshape(-1)
        if len(parts[".ulaw"]) != len(pcm) or len(parts[".alaw"]) != len(pcm):
            raise AudioFormatError("truncated", f"the G.711 files at {base} do not match its .wav")
        return cls(pcm=pcm, ulaw=parts[".ulaw"], alaw=parts[".alaw"])


def prepare(pcm8k: NDArray[np.int16], stem_path: str | os.PathLike[str]) -> PreparedAudio:
    """Encode normalised 8 kHz PCM and persist it at a path stem (stem.wav/.ulaw/.alaw)."""
    prepared = PreparedAudio.from_pcm(pcm8k)
    prepared.save(stem_path)
    return prepared
