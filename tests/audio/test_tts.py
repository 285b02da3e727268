"""Offline speech synthesis: every app voice speaks every default prompt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from openivr.audio.cache import RenderCache
from openivr.audio.normalise import TARGET_ACTIVE_DBFS, active_level_dbfs
from openivr.audio.texts import default_text, menu_text
from openivr.audio.tts import ENGINE_VERSION, MAX_TEXT_CHARS, SpeechEngine, TtsError
from openivr.engine.vocabulary import STANDARD_PROMPTS, VOICES, voice_is_female

ENGINE = SpeechEngine()


def median_pitch_hz(samples: NDArray[np.int16], rate: int) -> float:
    """Median fundamental of voiced 40 ms frames, by autocorrelation (60-400 Hz)."""
    frame = int(0.04 * rate)
    pitches = []
    for start in range(0, len(samples) - frame, frame):
        x = samples[start : start + frame].astype(np.float64)
        if np.sqrt(np.mean(x**2)) < 1000:
            continue
        corr = np.correlate(x, x, "full")[frame - 1 :]
        low, high = rate // 400, rate // 60
        lag = low + int(np.argmax(corr[low:high]))
        if corr[lag] > 0.4 * corr[0]:
            pitches.append(rate / lag)
    return float(np.median(pitches))


@pytest.mark.parametrize("voice", VOICES)
def test_every_standard_prompt_is_spoken_in_every_voice(voice: str, tmp_path: Path) -> None:
    cache = RenderCache(tmp_path, ENGINE)
    texts = [
        default_text(voice, prompt.key, app_type)
        for app_type, prompts in STANDARD_PROMPTS.items()
        for prompt in prompts
    ]
    texts.append(menu_text(voice, [("1", "Anna Berg"), ("#", "Support")], extension=True))
    for text in texts:
        audio = cache.render(voice, text)
        assert 0.5 <= audio.duration <= 15, (voice, text, audio.duration)
        level = active_level_dbfs(audio.pcm / np.float32(32768))
        assert level == pytest.approx(TARGET_ACTIVE_DBFS, abs=2), (voice, text)
        # Speech, not a blip: at least a third of 20 ms blocks carry sound.
        blocks = audio.pcm[: len(audio.pcm) // 160 * 160].reshape(-1, 160).astype(np.float64)
        loud = np.sqrt(np.mean(blocks**2, axis=1)) > 32768 * 10 ** ((TARGET_ACTIVE_DBFS - 20) / 20)
        assert loud.mean() > 0.33, (voice, text)


def test_female_codes_speak_higher_than_male_ones() -> None:
    text = "Welcome, and thank you for calling. Please hold while we connect your call."
    male = median_pitch_hz(*ENGINE.synthesize(text, "en"))
    female = median_pitch_hz(*ENGINE.synthesize(text, "en-fe"))
    assert female > male * 1.4


def test_voices_lists_each_app_voice_with_its_language_and_gender() -> None:
    voices = {v.voice: v for v in ENGINE.voices()}
    assert set(voices) == set(VOICES)
    assert voices["en-uk-fe"].language == "en_GB"
    assert voices["swe"].language == "sv_SE"
    for code, voice in voices.items():
        assert voice.gender == ("female" if voice_is_female(code) else "male")
    # Exactly one default voice per language.
    languages = [v.language for v in voices.values()]
    defaults = [v.language for v in voices.values() if v.default_voice]
    assert sorted(defaults) == sorted(set(languages))
    assert voices["en"].default_variant and not voices["en-uk-fe"].default_variant


def test_control_characters_are_spoken_as_spaces_not_crashes() -> None:
    # A NUL would end the C string early: "world" would be lost and the audio half as long.
    samples, _ = ENGINE.synthesize("Hello\x00 world\x07", "en")
    plain, _ = ENGINE.synthesize("Hello  world", "en")
    assert len(samples) == pytest.approx(len(plain), rel=0.05)


@pytest.mark.parametrize(
    ("text", "voice", "field", "words"),
    [
        ("", "en", "text", "empty"),
        ("   \n", "en", "text", "empty"),
        ("x" * (MAX_TEXT_CHARS + 1), "en", "text", f"at most {MAX_TEXT_CHARS}"),
        ("Hello", "klingon", "voice", "unknown voice 'klingon'"),
        ("Hello", "en-us", "voice", "unknown voice"),
    ],
)
def test_bad_requests_name_the_field(text: str, voice: str, field: str, words: str) -> None:
    with pytest.raises(TtsError) as caught:
        ENGINE.synthesize(text, voice)
    assert caught.value.field == field
    assert words in caught.value.detail


def test_longest_allowed_text_is_spoken() -> None:
    text = ("One two three four five six seven eight nine ten. " * 60)[:MAX_TEXT_CHARS]
    samples, rate = ENGINE.synthesize(text, "en")
    assert len(samples) / rate > 60


def test_engine_version_names_espeak_and_the_module_revision() -> None:
    assert ENGINE_VERSION.startswith("espeak-ng 1.")
    assert "openivr-tts" in ENGINE_VERSION
