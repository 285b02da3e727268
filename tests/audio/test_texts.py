"""Default prompt texts and the spoken menu in each language."""

from __future__ import annotations

import json
import unicodedata
from importlib import resources

import pytest

from openivr.audio.texts import (
    MENU_PHRASES,
    PromptTextError,
    default_text,
    menu_phrase,
    menu_text,
)
from openivr.engine.vocabulary import STANDARD_PROMPTS, VOICE_LANGUAGE, VOICES

LANGUAGES = sorted(set(VOICE_LANGUAGE.values()))

# The script each language is written in, as the first word of Unicode character names.
SCRIPT = {
    "hi": "DEVANAGARI",
    "ta": "TAMIL",
    "te": "TELUGU",
    "el": "GREEK",
    "ar": "ARABIC",
}


def letters_script(text: str) -> set[str]:
    return {unicodedata.name(ch).split()[0] for ch in text if ch.isalpha()}


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_file_has_every_standard_prompt_and_menu_phrase(language: str) -> None:
    source = resources.files("openivr.apps").joinpath("prompt_texts", f"{language}.json")
    data = json.loads(source.read_text(encoding="utf-8"))
    assert data["language"] == language
    for app_type, prompts in STANDARD_PROMPTS.items():
        assert set(data["prompts"][app_type]) == {p.key for p in prompts}
    assert set(data["menu_phrases"]) == set(MENU_PHRASES)
    option = data["menu_phrases"]["menu_option"]
    assert "{name}" in option and "{key}" in option
    assert option.format(name="N", key="K")  # no other placeholders


@pytest.mark.parametrize("voice", [v for v in VOICES if VOICE_LANGUAGE[v] in SCRIPT])
def test_texts_are_in_the_languages_own_script(voice: str) -> None:
    expected = SCRIPT[VOICE_LANGUAGE[voice]]
    for app_type, prompts in STANDARD_PROMPTS.items():
        for prompt in prompts:
            assert letters_script(default_text(voice, prompt.key, app_type)) == {expected}


def test_mailbox_and_system_goodbye_differ() -> None:
    mailbox = default_text("en", "goodbye", "mailbox")
    system = default_text("en", "goodbye", "sysprompt")
    assert "message" in mailbox and "message" not in system


def test_voices_sharing_a_language_share_texts() -> None:
    assert default_text("en", "welcome") == default_text("en-fe", "welcome")


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: default_text("klingon", "welcome"), "unknown voice 'klingon'"),
        (lambda: default_text("en", "lobby_music"), "no standard prompt 'lobby_music'"),
        (lambda: default_text("en", "goodbye"), "pass app_type"),
        (lambda: default_text("en", "welcome", "mailbox"), "for mailbox"),
        (lambda: default_text("en", "welcome", "fax"), "unknown app type 'fax'"),
        (lambda: menu_text("en", [("11", "Sales")], False), "'11' is not a phone key"),
        (lambda: menu_phrase("en", "menu_outro"), "unknown menu phrase"),
    ],
)
def test_unknown_lookups_say_what_is_unknown(call: object, words: str) -> None:
    with pytest.raises(PromptTextError, match=words):
        call()  # type: ignore[operator]


def test_english_menu_reads_each_option_then_the_extension() -> None:
    text = menu_text("en", [("1", "Anna Berg"), ("2", "the voicemail")], extension=True)
    assert text == (
        "For Anna Berg, press 1. For the voicemail, press 2. "
        "If you know the extension, dial it now."
    )


def test_star_and_hash_are_named_the_local_way() -> None:
    options = [("*", "the operator"), ("#", "repeat")]
    assert menu_text("en", options, False) == (
        "For the operator, press star. For repeat, press pound."
    )
    assert "press hash" in menu_text("en-uk-fe", options, False)
    assert "tryck stjärna" in menu_text("swe", options, False)


EXPECTED_MENUS = {
    "swe": "För Anna Berg, tryck 1. För röstbrevlådan, tryck 2.",
    "spa": "Para Anna Berg, pulse 1. Para el buzón de voz, pulse 2.",
    "fr-fe": "Pour Anna Berg, tapez 1. Pour la messagerie vocale, tapez 2.",
    "gr-fe": "Για Anna Berg, πατήστε 1. Για τον τηλεφωνητή, πατήστε 2.",
    "hin-fe": "Anna Berg के लिए 1 दबाएँ। वॉइसमेल के लिए 2 दबाएँ।",
    "tam-fe": "Anna Berg க்கு, 1 அழுத்தவும். குரலஞ்சல் க்கு, 2 அழுத்தவும்.",
    "tel-fe": "Anna Berg కోసం 1 నొక్కండి. వాయిస్‌మెయిల్ కోసం 2 నొక్కండి.",
    "ara-fe": "لِلْوُصُولِ إِلَى Anna Berg، اِضْغَطْ 1. لِلْوُصُولِ إِلَى البريد الصوتي، اِضْغَطْ 2.",
}
SECOND_OPTION = {
    "swe": "röstbrevlådan",
    "spa": "el buzón de voz",
    "fr-fe": "la messagerie vocale",
    "gr-fe": "τον τηλεφωνητή",
    "hin-fe": "वॉइसमेल",
    "tam-fe": "குரலஞ்சல்",
    "tel-fe": "వాయిస్‌మెయిల్",
    "ara-fe": "البريد الصوتي",
}


@pytest.mark.parametrize("voice", list(EXPECTED_MENUS))
def test_menu_is_built_in_each_language(voice: str) -> None:
    options = [("1", "Anna Berg"), ("2", SECOND_OPTION[voice])]
    assert menu_text(voice, options, extension=False) == EXPECTED_MENUS[voice]


@pytest.mark.parametrize("voice", VOICES)
def test_menu_without_options_says_so_or_invites_an_extension(voice: str) -> None:
    empty = menu_text(voice, [], extension=False)
    assert empty == menu_phrase(voice, "menu_empty")
    assert menu_text(voice, [], extension=True) == menu_phrase(voice, "menu_extension")
    with_extension = menu_text(voice, [("1", "X")], extension=True)
    assert with_extension.endswith(menu_phrase(voice, "menu_extension"))
