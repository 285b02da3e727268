"""Default prompt texts in each app voice's language, and the spoken menu built from options.

The texts live in openivr/apps/prompt_texts/<language>.json (language from
vocabulary.VOICE_LANGUAGE): "prompts" maps app type -> prompt key -> text, "menu_phrases" holds
the templates a default menu is built from.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from openivr.engine.vocabulary import DIGIT_SLOTS, STANDARD_PROMPTS, VOICE_LANGUAGE

# name_operator: a user without a name; name_number: a number no one of the account owns.
MENU_PHRASES = (
    "menu_option",
    "key_star",
    "key_hash",
    "menu_extension",
    "menu_empty",
    "name_operator",
    "name_number",
)


class PromptTextError(LookupError):
    """A voice, prompt key or menu key that has no default text."""


@cache
def _language_texts(language: str) -> dict[str, Any]:
    source = resources.files("openivr.apps").joinpath("prompt_texts", f"{language}.json")
    loaded: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    return loaded


def language_of(voice: str) -> str:
    """The prompt-text language (e.g. "en-gb") an app voice speaks."""
    language = VOICE_LANGUAGE.get(voice)
    if language is None:
        known = ", ".join(VOICE_LANGUAGE)
        raise PromptTextError(f"unknown voice {voice!r}; use one of {known}")
    return language


def default_text(voice: str, key: str, app_type: str | None = None) -> str:
    """The default text of a standard prompt in a voice's language.

    "goodbye" exists for both mailbox and sysprompt apps, with different words: pass
    app_type for it. Other keys are unique, so app_type may be left out.
    """
    prompts: dict[str, dict[str, str]] = _language_texts(language_of(voice))["prompts"]
    if app_type is not None:
        if app_type not in STANDARD_PROMPTS:
            raise PromptTextError(f"unknown app type {app_type!r}; use ivr, mailbox or sysprompt")
        types = [app_type]
    else:
        types = [t for t, items in STANDARD_PROMPTS.items() if any(p.key == key for p in items)]
    if not types or key not in prompts.get(types[0], {}):
        raise PromptTextError(
            f"no standard prompt {key!r}" + (f" for {app_type}" if app_type else "")
        )
    if len(types) > 1:
        raise PromptTextError(
            f"prompt {key!r} exists for {' and '.join(types)}: pass app_type to choose"
        )
    return prompts[types[0]][key]


def menu_phrase(voice: str, phrase: str) -> str:
    """One of the menu templates (menu_option, key_star, key_hash, ...) in a voice's language."""
    if phrase not in MENU_PHRASES:
        raise PromptTextError(f"unknown menu phrase {phrase!r}; use one of {MENU_PHRASES}")
    phrases: dict[str, str] = _language_texts(language_of(voice))["menu_phrases"]
    return phrases[phrase]


def _spoken_key(voice: str, key: str) -> str:
    if key not in DIGIT_SLOTS:
        raise PromptTextError(f"{key!r} is not a phone key; use 0-9, * or #")
    if key == "*":
        return menu_phrase(voice, "key_star")
    if key == "#":
        return menu_phrase(voice, "key_hash")
    return key  # eSpeak reads digits in the voice's language


def menu_text(voice: str, options: list[tuple[str, str]], extension: bool) -> str:
    """The default menu: "For Anna Berg, press 1. For the voicemail, press 2." and so on.

    options are (key, name) pairs in the order they are read; extension adds the sentence
    inviting callers to dial an extension. With neither, the menu says it has no options.
    """
    template = menu_phrase(voice, "menu_option")
    sentences = [
        template.format(name=name.strip(), key=_spoken_key(voice, key)) for key, name in options
    ]
    if extension:
        sentences.append(menu_phrase(voice, "menu_extension"))
    if not sentences:
        sentences.append(menu_phrase(voice, "menu_empty"))
    return " ".join(sentences)
