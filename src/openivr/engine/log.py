"""What the engine tells of a call: its log (apps entered, keys and how they were understood,
actions, failures) and how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from openivr.engine.config import MenuAction

# What a log entry tells of (LogEntry.kind).
LogKind = Literal[
    "app", "key", "input", "timeout", "action", "failure", "note", "transfer", "hangup", "hours"
]
# How a call ended (Outcome.kind).
# prompt_recorded: a call to the recording shortcode saved a prompt's new message.
OutcomeKind = Literal["transferred", "voicemail", "hangup", "caller_hangup", "prompt_recorded"]
OUTCOMES: tuple[OutcomeKind, ...] = get_args(OutcomeKind)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """Something that happened in the call, for transcripts and call records."""

    at: float
    kind: LogKind
    app_id: str
    text: str
    digit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "at": self.at,
            "kind": self.kind,
            "app_id": self.app_id,
            "text": self.text,
            "digit": self.digit,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the call ended: transferred (target), voicemail (seconds), hangup, caller_hangup."""

    kind: OutcomeKind
    app_id: str
    target: str | None = None
    voicemail_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "kind": self.kind,
            "app_id": self.app_id,
            "target": self.target,
            "voicemail_seconds": self.voicemail_seconds,
        }


def describe(action: MenuAction) -> str:
    """What an action does, in words."""
    kind = action.action
    if kind == "call":
        if action.to == "user":
            return f"call user {action.id}"
        if action.to == "csg":
            return f"call team {action.id}"
        return f"call {action.id}"
    if kind == "connect":
        return f"connect to app {action.id}"
    if kind == "play":
        return f"play prompt {action.id}"
    if kind == "hangup":
        return "hang up"
    if kind == "repeat":
        return "repeat the menu"
    if kind == "":
        return "nothing"
    return f"unknown action {kind!r}"
