"""Offline speech synthesis with eSpeak NG, loaded from the espeakng-loader wheel through ctypes."""

from __future__ import annotations

import ctypes
import os
import threading
import unicodedata
from dataclasses import dataclass

import espeakng_loader
import numpy as np
from numpy.typing import NDArray

from openivr.engine.vocabulary import VOICES, voice_is_female

# Bump when anything here changes what a given text sounds like (rate, variants, text cleaning):
# it is part of ENGINE_VERSION and so of every render cache key.
MODULE_REVISION = 1

MAX_TEXT_CHARS = 3000

# Slightly slower than eSpeak's default 175 words/minute: phone lines and callers need it.
SPEECH_RATE_WPM = 160

# speak_lib.h constants.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of calling exit() on a bad data dir
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_EE_OK = 0


@dataclass(frozen=True)
class _VoiceChoice:
    espeak_name: str  # a voice file name in espeak-ng-data/lang ("en" is British English)
    variant: str  # "" = the voice's own (male) sound, else a file in espeak-ng-data/voices/!v
    language: str  # as the compatible API shows it: en_GB
    language_label: str
    speaker: str


# Every app voice of vocabulary.VOICES. Female codes get a female variant; f3 sounds the least
# buzzy for English, f2 keeps the other languages' own formants better.
_VOICE_CHOICES: dict[str, _VoiceChoice] = {
    "en": _VoiceChoice("en-us", "", "en_US", "English (US)", "Michael"),
    "en-fe": _VoiceChoice("en-us", "f3", "en_US", "English (US)", "Emma"),
    "en-uk-fe": _VoiceChoice("en", "f3", "en_GB", "English (UK)", "Olivia"),
    "swe": _VoiceChoice("sv", "", "sv_SE", "Swedish", "Erik"),
    "spa": _VoiceChoice("es", "", "es_ES", "Spanish", "Pablo"),
    "hin-fe": _VoiceChoice("hi", "f2", "hi_IN", "Hindi", "Priya"),
    "tam-fe": _VoiceChoice("ta", "f2", "ta_IN", "Tamil", "Kavya"),
    "tel-fe": _VoiceChoice("te", "f2", "te_IN", "Telugu", "Lakshmi"),
    "gr-fe": _VoiceChoice("el", "f2", "el_GR", "Greek", "Eleni"),
    "fr-fe": _VoiceChoice("fr", "f2", "fr_FR", "French", "Claire"),
    "ara-fe": _VoiceChoice("ar", "f2", "ar_SA", "Arabic", "Layla"),
}
assert set(_VOICE_CHOICES) == set(VOICES), "every catalogue voice needs an eSpeak voice"

# The first app voice of a language is its default voice; en_US is English's default variant.
_DEFAULT_VARIANTS = {"en_US"}


class TtsError(ValueError):
    """A synthesis request that cannot be honoured; `field` names the bad input."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


class TtsEngineError(RuntimeError):
    """eSpeak NG could not be loaded or failed while speaking."""


@dataclass(frozen=True)
class TtsVoice:
    """One voice the engine can speak in, shaped like an entry of GET /tts/prompt/voice."""

    language: str
    language_label: str
    voice: str
    speaker: str
    gender: str
    default_variant: bool
    default_voice: bool


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Espeak:
    """The one eSpeak NG instance of this process; the library keeps global state."""

    def __init__(self) -> None:
        self.data_path = espeakng_loader.get_data_path()
        try:
            self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise TtsEngineError(f"cannot load the eSpeak NG library: {exc}") from exc
        lib = self.lib
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        raw_version = lib.espeak_Info(None)
        self.version = raw_version.decode("ascii", "replace") if raw_version else "unknown"
        self.sample_rate = 0
        self._chunks: list[bytes] = []
        # Kept on self: ctypes must not free the trampoline while eSpeak holds its pointer.
        self._callback = _SynthCallback(self._collect)
        self._pid = -1

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        if count > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # 0 = go on synthesising

    def _ensure_initialised(self) -> None:
        # A forked child inherits the parent's eSpeak state, which is safe to reuse, but we
        # initialise per process anyway so a child never depends on the parent's timing.
        if self._pid == os.getpid():
            return
        rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise TtsEngineError(f"eSpeak NG failed to start with data at {self.data_path}")
        self.sample_rate = rate
        self.lib.espeak_SetSynthCallback(self._callback)
        self._pid = os.getpid()

    def speak(self, text: str, voice_name: str) -> tuple[NDArray[np.int16], int]:
        """Synthesise text in an eSpeak voice name (e.g. "en-us+f3"); caller holds the lock."""
        self._ensure_initialised()
        if self.lib.espeak_SetVoiceByName(voice_name.encode()) != _EE_OK:
            raise TtsEngineError(f"eSpeak NG has no voice {voice_name!r}")
        self.lib.espeak_SetParameter(_PARAM_RATE, SPEECH_RATE_WPM, 0)
        encoded = text.encode("utf-8") + b"\0"
        buffer = ctypes.create_string_buffer(encoded, len(encoded))
        self._chunks = []
        status = self.lib.espeak_Synth(
            buffer, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        chunks, self._chunks = self._chunks, []
        if status != _EE_OK:
            raise TtsEngineError(f"eSpeak NG failed to synthesise (status {status})")
        samples = np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.int16)
        return samples, self.sample_rate


# eSpeak NG is not thread safe and is one global instance per process: every call goes
# through this lock.
_LOCK = threading.Lock()
_INSTANCE: _Espeak | None = None


def _reset_lock_after_fork() -> None:
    # A fork while another thread synthesises would copy a held lock into the child forever.
    global _LOCK
    _LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_after_fork)


def _espeak() -> _Espeak:
    global _INSTANCE
    if _INSTANCE is None:
        _INSTANCE = _Espeak()
    return _INSTANCE


def _engine_version() -> str:
    try:
        with _LOCK:
            version = _espeak().version
    except TtsEngineError:
        version = "unavailable"
    return f"espeak-ng {version}; openivr-tts {MODULE_REVISION}; rate {SPEECH_RATE_WPM}"


ENGINE_VERSION: str = _engine_version()


def _clean_text(text: str) -> str:
    # Control characters (NUL especially) would cut or confuse the C string: make them spaces.
    # Only category Cc: format characters such as ZWNJ are part of Indic and Arabic spelling.
    return "".join(
        " " if unicodedata.category(ch) == "Cc" and ch not in "\n\t" else ch for ch in text
    ).strip()


class SpeechEngine:
    """Speaks text in the app voices of the catalogue, offline, with eSpeak NG."""

    version: str = ENGINE_VERSION

    def __init__(self) -> None:
        with _LOCK:
            self._espeak = _espeak()
        self._available = self._find_available()

    def _find_available(self) -> dict[str, _VoiceChoice]:
        """The app voices whose eSpeak language, dictionary and variant are in the data dir."""
        data = self._espeak.data_path
        lang_files: set[str] = set()
        for _root, _dirs, files in os.walk(os.path.join(data, "lang")):
            lang_files.update(name.lower() for name in files)
        available: dict[str, _VoiceChoice] = {}
        for code, choice in _VOICE_CHOICES.items():
            base = choice.espeak_name.split("-")[0]
            has_lang = choice.espeak_name in lang_files
            has_dict = os.path.exists(os.path.join(data, f"{base}_dict"))
            has_variant = not choice.variant or os.path.exists(
                os.path.join(data, "voices", "!v", choice.variant)
            )
            if has_lang and has_dict and has_variant:
                available[code] = choice
        return available

    def voices(self) -> list[TtsVoice]:
        """The voices this engine really has, in catalogue order."""
        seen_languages: set[str] = set()
        result = []
        for code, choice in self._available.items():
            result.append(
                TtsVoice(
                    language=choice.language,
                    language_label=choice.language_label,
                    voice=code,
                    speaker=choice.speaker,
                    gender="female" if voice_is_female(code) else "male",
                    default_variant=choice.language in _DEFAULT_VARIANTS
                    or not any(
                        c.language != choice.language
                        and c.language.split("_")[0] == choice.language.split("_")[0]
                        for c in self._available.values()
                    ),
                    default_voice=choice.language not in seen_languages,
                )
            )
            seen_languages.add(choice.language)
        return result

    def espeak_voice(self, voice: str) -> str:
        """The eSpeak voice name (with variant) an app voice code speaks with."""
        choice = self._available.get(voice)
        if choice is None:
            known = ", ".join(self._available)
            raise TtsError("voice", f"unknown voice {voice!r}; use one of {known}")
        return choice.espeak_name + (f"+{choice.variant}" if choice.variant else "")

    def check(self, text: str, voice: str) -> str:
        """Validate a request (TtsError naming the field) and return the text eSpeak will read."""
        if not isinstance(text, str) or not text.strip():
            raise TtsError("text", "text is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise TtsError(
                "text", f"text is {len(text)} characters long; at most {MAX_TEXT_CHARS} allowed"
            )
        self.espeak_voice(voice)
        cleaned = _clean_text(text)
        if not cleaned:
            raise TtsError("text", "text has nothing to speak")
        return cleaned

    def synthesize(self, text: str, voice: str) -> tuple[NDArray[np.int16], int]:
        """Speak text in an app voice: mono int16 samples and their sample rate."""
        cleaned = self.check(text, voice)
        name = self.espeak_voice(voice)
        with _LOCK:
            return self._espeak.speak(cleaned, name)
