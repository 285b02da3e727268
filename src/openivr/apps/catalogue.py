"""The standard prompt catalogue and the voices every app can speak in."""

from __future__ import annotations

from dataclasses import dataclass

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
    ),
}
