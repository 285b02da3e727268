"""What a simulated caller does, in order: a timeline, checked and turned into steps.

The JSON forms `parse_timeline` accepts:

- `"12#"` or `{"keys": "12#"}`: each key pressed as soon as nothing is playing any more
  (right after the current prompt ends; at once when the engine is already waiting).
- `{"steps": [step, ...]}` or a bare list of steps (a string in the list is shorthand keys).

A step is one object with exactly one of these (schema: `TIMELINE_SCHEMA`):

- `{"key": "1", "after": 2.5}`: press a key `after` seconds (default 0) after nothing is playing
  or ringing any more following the previous step. The time is fixed then: if the engine starts a prompt
  meanwhile (a timeout), the key lands in that prompt.
- `{"key": "1", "during": "menu", "after": 0.5}`: press it while the prompt named `during` (a
  standard key such as menu/welcome/invalid_option, a prompt name, or a prompt id) plays,
  `after` seconds into it (default: half way; at most its end). It waits for that prompt.
- `{"key": "2", "at": 0}`: press it `at` seconds after the call was answered, whatever plays
  then (a caller who knows the menu presses at once); at once if that moment has passed when
  the step's turn comes. Not with `after` or `during`.
- `{"hangup": true, "after": 3}` (or with `during` or `at`): the caller hangs up.
- `{"record": 12, "end": "key"|"silence"|"hangup"}`: when the mailbox records, the caller
  speaks 12 s and then presses '#' (default), stays silent until the silence limit (5 s; the
  recorder trims that tail), or hangs up. Without a record step a caller says nothing.
- `{"transfer": "answered"|"busy"|"no_answer"|"unreachable", "after": 4}`: the result of the
  next transfer, `after` seconds of ringing (defaults in the simulator's `RING_SECONDS`). Transfers without a
  step are answered after 4 s. A target that cannot be rung now (`route_transfer` with the
  `reachability` given: no trunk for a number, a user with no phone) fails at once, as a real
  call would, and leaves the step for the next transfer.
- `{"team": "Bob", "after": 6, "busy": ["Anna"]}`: when the next team rings, the member named
  (user id, name or extension) answers `after` seconds (default 4) into their own ringing;
  every other member rings out (`ring_seconds`); members in `busy` are on another call (skipped
  by `order` and `rotate`). `{"team": "nobody"}`: nobody answers. Without a team step the
  first member rung answers after 4 s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import isfinite
from typing import Any, Literal, get_args

from openivr.engine.vocabulary import one_of

KEYS = "0123456789*#"
# How a simulated transfer ends, and how a simulated caller ends a recording.
TransferResult = Literal["answered", "busy", "no_answer", "unreachable"]
TRANSFER_RESULTS: tuple[TransferResult, ...] = get_args(TransferResult)
RecordEnd = Literal["key", "silence", "hangup"]
RECORD_ENDS: tuple[RecordEnd, ...] = get_args(RecordEnd)
# A team step's word for "no member answers".
NOBODY = "nobody"

TIMELINE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "OpenIVR simulated caller timeline",
    "$defs": {
        "keys": {"type": "string", "pattern": "^[0-9*#]*$"},
        "when": {
            "after": {"type": "number", "minimum": 0},
            "during": {"type": "string", "minLength": 1},
        },
        "step": {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {
                        "key": {"type": "string", "pattern": "^[0-9*#]$"},
                        "after": {"type": "number", "minimum": 0},
                        "during": {"type": "string", "minLength": 1},
                        "at": {"type": "number", "minimum": 0},
                    },
                    "required": ["key"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "hangup": {"const": True},
                        "after": {"type": "number", "minimum": 0},
                        "during": {"type": "string", "minLength": 1},
                        "at": {"type": "number", "minimum": 0},
                    },
                    "required": ["hangup"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "record": {"type": "number", "minimum": 0},
                        "end": {"enum": list(RECORD_ENDS)},
                    },
                    "required": ["record"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "transfer": {"enum": list(TRANSFER_RESULTS)},
                        "after": {"type": "number", "minimum": 0},
                    },
                    "required": ["transfer"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "team": {"type": "string", "minLength": 1},
                        "after": {"type": "number", "minimum": 0},
                        "busy": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["team"],
                    "additionalProperties": False,
                },
                {"$ref": "#/$defs/keys"},
            ]
        },
    },
    "oneOf": [
        {"$ref": "#/$defs/keys"},
        {"type": "array", "items": {"$ref": "#/$defs/step"}},
        {
            "type": "object",
            "properties": {"keys": {"$ref": "#/$defs/keys"}},
            "required": ["keys"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"steps": {"type": "array", "items": {"$ref": "#/$defs/step"}}},
            "required": ["steps"],
            "additionalProperties": False,
        },
    ],
}


class TimelineError(ValueError):
    """A timeline the simulator cannot follow; names the step and the field."""


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the caller does (see the module docstring)."""

    kind: str  # key | hangup | record | transfer | team
    key: str = ""
    after: float | None = None
    during: str | None = None
    seconds: float = 0.0
    end: RecordEnd = "key"
    result: TransferResult = "answered"
    member: str = ""  # team: who answers (user id, name or extension), or "nobody"
    busy: tuple[str, ...] = ()  # team: members on another call
    at: float | None = None  # key/hangup: seconds since the call was answered


def parse_timeline(raw: Any) -> list[Step]:
    """Check a timeline (see the module docstring) and turn it into steps."""
    if isinstance(raw, str):
        return _key_steps(raw, "timeline")
    if isinstance(raw, Mapping):
        extra = set(raw) - {"keys", "steps"}
        if extra or len(raw) != 1:
            raise TimelineError(
                "timeline: give exactly one of 'keys' (a string) or 'steps' (a list)"
            )
        if "keys" in raw:
            if not isinstance(raw["keys"], str):
                raise TimelineError("timeline.keys: must be a string of 0-9, * and #")
            return _key_steps(raw["keys"], "timeline.keys")
        raw = raw["steps"]
    if not isinstance(raw, Sequence) or isinstance(raw, bytes):
        raise TimelineError("timeline: must be a string of keys, a list of steps or an object")
    steps: list[Step] = []
    for index, item in enumerate(raw):
        where = f"timeline[{index}]"
        if isinstance(item, str):
            steps.extend(_key_steps(item, where))
        elif isinstance(item, Mapping):
            steps.append(_parse_step(item, where))
        else:
            raise TimelineError(f"{where}: must be an object or a string of keys")
    return steps


def _key_steps(keys: str, where: str) -> list[Step]:
    for key in keys:
        if key not in KEYS:
            raise TimelineError(f"{where}: {key!r} is not a key; use 0-9, * and #")
    return [Step("key", key=key) for key in keys]


def _parse_step(item: Mapping[str, Any], where: str) -> Step:
    kinds = [kind for kind in ("key", "hangup", "record", "transfer", "team") if kind in item]
    if len(kinds) != 1:
        raise TimelineError(f"{where}: give exactly one of key, hangup, record, transfer or team")
    kind = kinds[0]
    allowed = {
        "key": {"key", "after", "during", "at"},
        "hangup": {"hangup", "after", "during", "at"},
        "record": {"record", "end"},
        "transfer": {"transfer", "after"},
        "team": {"team", "after", "busy"},
    }[kind]
    extra = set(item) - allowed
    if extra:
        raise TimelineError(f"{where}: {sorted(extra)} not allowed in a {kind} step")
    after = _seconds(item, "after", where) if "after" in item else None
    during = item.get("during")
    if during is not None and (not isinstance(during, str) or not during.strip()):
        raise TimelineError(f"{where}.during: must name a prompt")
    at = _seconds(item, "at", where) if "at" in item else None
    if at is not None and (after is not None or during is not None):
        raise TimelineError(f"{where}.at: a moment of the call; give it without after or during")
    if kind == "key":
        key = item["key"]
        if not isinstance(key, str | int) or isinstance(key, bool) or str(key) not in KEYS:
            raise TimelineError(f"{where}.key: must be one of 0-9, * or #; got {key!r}")
        return Step("key", key=str(key), after=after, during=during, at=at)
    if kind == "hangup":
        if item["hangup"] is not True:
            raise TimelineError(f"{where}.hangup: must be true")
        return Step("hangup", after=after, during=during, at=at)
    if kind == "record":
        end = one_of(item.get("end", "key"), RECORD_ENDS)
        if end is None:
            raise TimelineError(f"{where}.end: must be one of {', '.join(RECORD_ENDS)}")
        return Step("record", seconds=_seconds(item, "record", where), end=end)
    if kind == "team":
        return _team_step(item, where, after)
    result = one_of(item["transfer"], TRANSFER_RESULTS)
    if result is None:
        raise TimelineError(f"{where}.transfer: must be one of {', '.join(TRANSFER_RESULTS)}")
    return Step("transfer", after=after, result=result)


def _team_step(item: Mapping[str, Any], where: str, after: float | None) -> Step:
    member = item["team"]
    if not isinstance(member, str | int) or isinstance(member, bool) or not str(member).strip():
        raise TimelineError(
            f"{where}.team: name the member who answers (user id, name or extension) or {NOBODY!r}"
        )
    busy = item.get("busy", [])
    if not isinstance(busy, list) or not all(
        isinstance(b, str | int) and not isinstance(b, bool) for b in busy
    ):
        raise TimelineError(f"{where}.busy: must be a list of members")
    return Step(
        "team", after=after, member=str(member).strip(), busy=tuple(str(b).strip() for b in busy)
    )


def _seconds(item: Mapping[str, Any], name: str, where: str) -> float:
    value = item[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not isfinite(value):
        raise TimelineError(f"{where}.{name}: must be a number of seconds")
    if value < 0:
        raise TimelineError(f"{where}.{name}: must not be negative")
    return float(value)
