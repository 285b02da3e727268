"""The words a voice app is made of, defined once for every layer: app types, menu slots and
the keys they answer to, actions and where they go, how a team rings, the voices and the
standard prompt catalogue.

The engine is the bottom layer, so the API's validation (apps/), the store, speech and the
engine itself all read these from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar, get_args

Word = TypeVar("Word", bound=str)

AppType = Literal["ivr", "mailbox", "sysprompt"]
APP_TYPES: tuple[AppType, ...] = get_args(AppType)

# Menu slots in the order of the compatible API, and the keypad key each one answers to.
DIGIT_SLOTS: dict[str, str] = {str(d): f"digit_{d}" for d in range(10)} | {
    "*": "digit_star",
    "#": "digit_hash",
}
SLOT_DIGITS: dict[str, str] = {slot: key for key, slot in DIGIT_SLOTS.items()}
MENU_SLOTS: tuple[str, ...] = (*DIGIT_SLOTS.values(), "timeout", "invalid")

# What a menu entry or final action does; "" means the entry is not in use.
Action = Literal["", "call", "connect", "play", "hangup", "repeat"]
ACTIONS: tuple[Action, ...] = get_args(Action)
# Where a `call` goes: a user, a phone number, a SIP address or a team ("csg", the hosted
# API's call service group).
CallTarget = Literal["user", "phnum", "other", "sip", "csg"]
CALL_TARGETS: tuple[CallTarget, ...] = get_args(CallTarget)

# How a team rings its members (see engine.config.TeamConfig).
Strategy = Literal["all", "order", "rotate"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)

# App voices of the compatible API: language code, "-fe" marks a female voice.
VOICES: tuple[str, ...] = (
    "en",
    "en-fe",
    "en-uk-fe",
    "swe",
    "spa",
    "hin-fe",
    "tam-fe",
    "tel-fe",
    "gr-fe",
    "fr-fe",
    "ara-fe",
)

# The language file (apps/prompt_texts/<lang>.json) each voice reads its default texts from.
VOICE_LANGUAGE: dict[str, str] = {
    "en": "en-us",
    "en-fe": "en-us",
    "en-uk-fe": "en-gb",
    "swe": "sv",
    "spa": "es",
    "hin-fe": "hi",
    "tam-fe": "ta",
    "tel-fe": "te",
    "gr-fe": "el",
    "fr-fe": "fr",
    "ara-fe": "ar",
}


def one_of(text: str, words: tuple[Word, ...]) -> Word | None:
    """The word of a fixed set that `text` is, or None (so a checked string keeps its type)."""
    return next((word for word in words if word == text), None)


def voice_is_female(voice: str) -> bool:
    """Whether an app voice code names a female voice."""
    return voice.endswith("-fe")


@dataclass(frozen=True)
class StandardPrompt:
    """A prompt every app of a type has; it cannot be created or deleted."""

    key: str
    name: str
    description: str


STANDARD_PROMPTS: dict[str, tuple[StandardPrompt, ...]] = {
    "ivr": (
        StandardPrompt("welcome", "Welcome", "Played first when play_welcome is yes"),
        StandardPrompt("menu", "Menu", "Lists the menu choices; by default built from the menu"),
        StandardPrompt("please_wait", "Please wait", "Played while a call is being connected"),
    ),
    "mailbox": (
        StandardPrompt("greeting", "Greeting", "Played before the beep"),
        StandardPrompt("goodbye", "Goodbye", "Played after the message was recorded"),
    ),
    "sysprompt": (
        StandardPrompt("invalid_option", "Invalid option", "A key that leads nowhere"),
        StandardPrompt("no_input", "No input", "No key was pressed in time"),
        StandardPrompt("unavailable", "Unavailable", "The destination cannot be reached"),
        StandardPrompt("goodbye", "Goodbye", "Said before the system hangs up"),
        StandardPrompt(
            "closed", "Closed", "Outside opening hours, when the menu has no closed action"
        ),
        StandardPrompt("all_busy", "All busy", "Nobody in a team answered (before no_answer)"),
        StandardPrompt("no_message", "No message", "A mailbox kept nothing (silent or too short)"),
        StandardPrompt(
            "record_code", "Record: prompt number", "Recording by phone asks for a prompt's number"
        ),
        StandardPrompt(
            "record_review",
            "Record: keep or again",
            "After the recording played back: 1 keeps it, 2 records again, star cancels",
        ),
        StandardPrompt(
            "record_saved", "Record: saved", "The recording is the prompt's message now"
        ),
        StandardPrompt(
            "record_unknown", "Record: unknown number", "No prompt has the number entered"
        ),
    ),
}

# The shortcode a user of the account dials from a registered phone to record a prompt's
# message (as on the hosted service); no app is given it.
RECORDING_SHORTCODE = "*22"
