"""What a simulated call leaves: its transcript (what the caller heard and did, key by key, and
how the call ended) and the stretches of audio to render what the caller heard."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from openivr.engine.call import HoursDecision
from openivr.engine.config import PromptRef
from openivr.engine.log import LogEntry, Outcome


@dataclass(slots=True)
class TranscriptEntry:
    """A line of the transcript: a prompt, a key and its meaning, a wait, an app entered ..."""

    at: float
    kind: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {"at": rounded(self.at), "kind": self.kind, "text": self.text, **self.data}


@dataclass(slots=True)
class AudioSegment:
    """A stretch of what the caller hears: prompt, silence, beep, recording (silence), ringback."""

    kind: str
    start: float
    duration: float
    prompt: PromptRef | None = None
    voice: str | None = None
    full_duration: float | None = None  # of a prompt; more than `duration` when it was cut

    def to_dict(self) -> dict[str, Any]:
        """JSON shape."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "start": rounded(self.start),
            "duration": rounded(self.duration),
        }
        if self.prompt is not None:
            out["prompt"] = self.prompt.to_dict()
            out["voice"] = self.voice
            out["full_duration"] = rounded(self.full_duration or 0.0)
        return out


@dataclass(slots=True)
class Transcript:
    """What happened in a simulated call, in order, and how it ended."""

    app_id: str
    caller: str
    dialed: str
    entries: list[TranscriptEntry]
    audio: list[AudioSegment]
    outcome: Outcome | None
    total_seconds: float
    log: list[LogEntry]
    unused_steps: int = 0
    truncated: bool = False
    stalled: bool = False
    at: datetime | None = None
    hours: list[HoursDecision] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[TranscriptEntry]:
        """The entries of one kind (prompt, key, app, transfer, recording ...)."""
        return [entry for entry in self.entries if entry.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        """JSON shape (only str, number, bool, None, list and dict)."""
        return {
            "app_id": self.app_id,
            "caller": self.caller,
            "dialed": self.dialed,
            "entries": [entry.to_dict() for entry in self.entries],
            "audio": [segment.to_dict() for segment in self.audio],
            "outcome": self.outcome.to_dict() if self.outcome is not None else None,
            "total_seconds": rounded(self.total_seconds),
            "unused_steps": self.unused_steps,
            "truncated": self.truncated,
            "stalled": self.stalled,
            "at": self.at.isoformat() if self.at is not None else None,
            "hours": [hours_view(h) for h in self.hours],
        }

    def render_text(self) -> str:
        """The transcript for a person reading it in a terminal."""
        lines = [
            f"Call to app {self.app_id} from {self.caller or '?'} (dialed {self.dialed or '?'})"
            + (f" at {self.at.isoformat()}" if self.at is not None else "")
        ]
        for entry in self.entries:
            label = entry.kind if entry.kind != "key" else f"key {entry.data.get('digit', '')}"
            lines.append(f"{entry.at:8.2f}s  {label:<10} {entry.text}")
        outcome = self.outcome
        if outcome is None:
            ending = "the call did not end"
        elif outcome.kind == "transferred":
            ending = f"transferred to {outcome.target}"
        elif outcome.kind == "voicemail":
            ending = f"voicemail of {outcome.voicemail_seconds:.1f} s"
        else:
            ending = outcome.kind.replace("_", " ")
        lines.append(f"Outcome: {ending}, after {self.total_seconds:.2f} s")
        if self.truncated:
            lines.append("(stopped: too many events)")
        if self.unused_steps:
            lines.append(f"({self.unused_steps} timeline steps not used)")
        return "\n".join(lines)


def hours_view(decision: HoursDecision) -> dict[str, Any]:
    """An opening-hours decision of the call, as JSON."""
    return {
        "app_id": decision.app_id,
        "schedule_id": decision.schedule_id,
        "open": decision.result.open,
        "rule": decision.result.rule,
        "local_time": decision.result.local.isoformat(),
    }


def rounded(value: float) -> float:
    """Seconds as the transcript shows them (to the millisecond)."""
    return round(value, 3)
