"""What a prompt sounds like: its custom message, or its default recording in a voice."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.apps.validation import FieldError
from openivr.audio.cache import RenderCache
from openivr.audio.prepared import PreparedAudio
from openivr.audio.texts import default_text, menu_phrase, menu_text
from openivr.audio.tts import TtsError
from openivr.audio.wav import AudioFormatError
from openivr.engine.config import PromptRef
from openivr.engine.routing import is_number
from openivr.engine.vocabulary import SLOT_DIGITS, STANDARD_PROMPTS
from openivr.store.audiostore import AudioStore
from openivr.store.models import User
from openivr.store.snapshot import AccountSnapshot, load_snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromptSound:
    """A resolved prompt: the words (when known), where they come from, and the audio."""

    text: str | None
    source: str  # upload | tts | default
    voice: str
    audio: PreparedAudio
    cache_key: str = ""  # for defaults: the render cache entry


def person_name(user: User) -> str | None:
    """A user's name as a menu says it; None when they have none. A first name that is just the
    local part of their e-mail address (how accounts used to be created) is not a name."""
    first, last = user.fname.strip(), user.lname.strip()
    if not last and first.lower() == user.email.split("@", 1)[0].lower():
        first = ""
    return f"{first} {last}".strip() or None


def _spoken_name(snapshot: AccountSnapshot, action: dict[str, str], voice: str) -> str | None:
    """What a menu calls the place a key leads to: people by name ("the operator" without
    one), an app by its name, a number as "an external number" unless it is a user's."""
    kind, to, ident = action.get("action"), action.get("to"), action.get("id", "")
    if kind == "call" and to == "user":
        user = snapshot.users.get(ident)
        if user is None:
            return None
        return person_name(user) or menu_phrase(voice, "name_operator")
    if kind == "call" and to == "csg":
        team = snapshot.teams.get(ident)
        return team.name if team else None
    if kind == "call" and to in ("phnum", "other", "sip"):
        if to == "sip" or not is_number(ident):
            who = ident.split(":", 1)[-1].split("@", 1)[0]
            app = snapshot.apps.get(who)
            if app is not None:
                return app.name or None  # an app's own address: the call enters it
            if not is_number(who) and not who.isdigit():
                return who  # sip:sales@pbx → "sales"
            ident = who
        digits = ident.lstrip("+")
        for user in snapshot.users.values():
            if user.phnum and user.phnum.lstrip("+") == digits:
                return person_name(user) or menu_phrase(voice, "name_number")
        return menu_phrase(voice, "name_number")
    if kind == "connect":
        app = snapshot.apps.get(ident)
        return app.name if app else None
    if kind == "play":
        return snapshot.prompt_names.get(ident)
    return None


def menu_prompt_text(snapshot: AccountSnapshot, app_id: str, voice: str) -> str:
    """The default menu prompt built from where each digit leads."""
    app = snapshot.apps[app_id]
    options: list[tuple[str, str]] = []
    for slot, key in SLOT_DIGITS.items():
        name = _spoken_name(snapshot, app.config.get("menu", {}).get(slot, {}), voice)
        if name:
            options.append((key, name))
    return menu_text(voice, options, app.config.get("get_extension") == "yes")


class PromptSounds:
    """Resolves prompts to audio for the simulator, the API and live calls."""

    def __init__(self, store: AudioStore, cache: RenderCache):
        self.store = store
        self.cache = cache

    async def speak(self, text: str, voice: str) -> PreparedAudio:
        """Text spoken in a voice, through the render cache; FieldError naming what is wrong."""
        try:
            audio: PreparedAudio = await self.cache.render_async(voice, text)
        except TtsError as exc:
            raise FieldError(exc.field, exc.detail) from None
        except AudioFormatError as exc:  # e.g. punctuation only: eSpeak says nothing
            raise FieldError("text", f"speaks as no audible sound ({exc.detail})") from None
        return audio

    def default_text(self, snapshot: AccountSnapshot, prompt: PromptRef, voice: str) -> str:
        """The words of a standard prompt's default recording in a voice."""
        app = snapshot.apps[prompt.app_id]
        if prompt.key == "menu" and app.app_type == "ivr":
            return menu_prompt_text(snapshot, app.app_id, voice)
        return default_text(voice, prompt.key or "", app.app_type)

    def text(self, snapshot: AccountSnapshot, prompt: PromptRef, voice: str) -> str | None:
        """The words a caller hears, when they are known (not for uploaded recordings)."""
        message = snapshot.messages.get(prompt.prompt_id)
        if message is not None:
            return message.text or None
        if prompt.key and prompt.app_id in snapshot.apps:
            return self.default_text(snapshot, prompt, voice)
        return None

    def resolve(
        self, snapshot: AccountSnapshot, prompt: PromptRef, voice: str
    ) -> PromptSound | None:
        """The audio of a prompt (rendering a default on a cache miss); None if it has none."""
        message = snapshot.messages.get(prompt.prompt_id)
        if message is not None:
            audio = self.store.load_prompt_message(message.key)
            return PromptSound(message.text or None, message.source, message.voice or voice, audio)
        if not prompt.key or prompt.app_id not in snapshot.apps:
            return None
        words = self.default_text(snapshot, prompt, voice)
        audio = self.cache.render(voice, words)
        return PromptSound(words, "default", voice, audio, self.cache.key(voice, words))

    async def resolve_async(
        self, snapshot: AccountSnapshot, prompt: PromptRef, voice: str
    ) -> PromptSound | None:
        """resolve() without blocking the event loop on a render or a file read."""
        message = snapshot.messages.get(prompt.prompt_id)
        if message is None and prompt.key and prompt.app_id in snapshot.apps:
            words = self.default_text(snapshot, prompt, voice)
            audio = await self.cache.render_async(voice, words)
            return PromptSound(words, "default", voice, audio, self.cache.key(voice, words))
        if message is not None and self.store.has_loaded(message.key):
            return self.resolve(snapshot, prompt, voice)  # in memory: no thread hop needed
        return await asyncio.to_thread(self.resolve, snapshot, prompt, voice)


async def warm_app(
    sessions: async_sessionmaker[AsyncSession], sounds: PromptSounds, account_id: str, app_id: str
) -> int:
    """Render an app's default prompts now (after a change) so calls find them cached."""
    async with sessions() as db:
        snapshot = await load_snapshot(db, account_id)
    app = snapshot.config.app(app_id)
    if app is None:
        return 0
    rendered = 0
    for standard in STANDARD_PROMPTS.get(app.app_type, ()):
        ref = snapshot.config.standard_prompt(app_id, standard.key)
        if ref is not None and await sounds.resolve_async(snapshot, ref, app.voice) is not None:
            rendered += 1
    return rendered


_warming: dict[str, asyncio.Task[None]] = {}
_rewarm: set[str] = set()


def warm_in_background(
    sessions: async_sessionmaker[AsyncSession], sounds: PromptSounds, account_id: str, app_id: str
) -> None:
    """Render an app's prompts soon, without waiting: one run per app at a time, and one
    more after it when the app changed meanwhile. Failures are logged, never raised."""
    if app_id in _warming:
        _rewarm.add(app_id)
        return

    async def run() -> None:
        try:
            while True:
                _rewarm.discard(app_id)
                try:
                    await warm_app(sessions, sounds, account_id, app_id)
                except Exception as exc:  # a failed warm-up only costs a render at call time
                    log.warning("rendering the prompts of %s failed: %s", app_id, exc)
                if app_id not in _rewarm:
                    return
        finally:
            _warming.pop(app_id, None)

    _warming[app_id] = asyncio.get_running_loop().create_task(run())
