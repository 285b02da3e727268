"""A callback as checked and ready to place: the two parties, the caller id each sees.

`call1` and `call2` each name a party: a phone number (E.164, `+` first; spaces, dashes, dots
and brackets are dropped), a SIP address written with `sip:` or `sips:`, or a user of the
account by user id or e-mail. Digits without `+` are a user id or nothing: an unknown user id
is never dialled as a number, and an address without `sip:` is a user's e-mail or nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from openivr.apps import validation as v
from openivr.apps.validation import FieldError

PartyKind = Literal["phnum", "sip", "user"]
FIELDS = ("app_id", "call1", "call2", "show_1", "show_2")
AUTOMATIC = "automatic"
# What a caller id is when the account has no number to show.
ANONYMOUS = "anonymous"
_FORMATTING = re.compile(r"[\s\-.()]")
_MAX_TEXT = 320


@dataclass(frozen=True)
class Party:
    """One side of a callback: who is rung (`kind` and `value`) and how the request named it."""

    field: str  # call1 or call2
    kind: PartyKind
    value: str  # an E.164 number, a sip:/sips: URI, or a user id
    given: str  # as the request wrote it (the call record shows it)


@dataclass(frozen=True)
class CallbackPlan:
    """A callback checked and ready to place."""

    session_id: str
    account_id: str
    requested_by: str  # the user whose token asked
    app_id: str  # free text naming the client (the hosted API's field)
    first: Party
    second: Party
    show_1: str  # the caller id the first party sees
    show_2: str  # the caller id the second party sees

    def to_json(self) -> str:
        """One line of JSON (a media process receives it over its control socket)."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> CallbackPlan:
        """The plan `to_json` wrote (ValueError, KeyError or TypeError if it is not one)."""
        raw = json.loads(text)
        first, second = Party(**raw.pop("first")), Party(**raw.pop("second"))
        return cls(first=first, second=second, **raw)


class CallbackRefused(Exception):
    """The node cannot place a callback now (stopping, full, no SIP): the reason in words."""


class CallbackPlacer(Protocol):
    """Places checked callbacks: the calls layer in this process, or a media process."""

    async def place(self, plan: CallbackPlan) -> None:
        """Start the callback (it runs on; its record tells how it went); CallbackRefused when
        the node cannot take it now."""


def party_text(field: str, value: Any) -> str:
    """The text of call1 or call2: a non-empty string without control characters."""
    if value is None:
        raise FieldError(field, "is required", "missing_field")
    return v.text(field, value, _MAX_TEXT)


def phone_number(field: str, text: str) -> str:
    """A number as written (`+`, then digits and formatting) in E.164."""
    return v.e164(field, "+" + _FORMATTING.sub("", text[1:]))


def caller_id_text(field: str, value: Any) -> str | None:
    """show_1 or show_2: None for automatic (the default), else the number asked for in E.164
    (`+` optional, as phone numbers are written elsewhere in the API)."""
    if value is None:
        return None
    text = v.text(field, value, _MAX_TEXT)
    if text.lower() == AUTOMATIC:
        return None
    cleaned = _FORMATTING.sub("", text)
    if not cleaned.startswith("+"):
        cleaned = "+" + cleaned
    if not v.E164.match(cleaned):
        raise FieldError(
            field, f"must be 'automatic' or a phone number of this account, got {text!r}"
        )
    return cleaned


def sip_address(field: str, text: str) -> str:
    """A sip: or sips: URI naming a user at a host."""
    if "@" not in text or not v.SIP_URI.match(text):
        raise FieldError(
            field, f"must be a SIP address like sip:anna@pbx.example.com, got {text!r}"
        )
    return text
