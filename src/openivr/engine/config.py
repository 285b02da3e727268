"""What the call engine reads about an account: a small Protocol and plain dataclasses.

The store implements `CallConfig`; tests and the simulator use `StaticConfig`. Every lookup
except `app()` is scoped by account id, and the engine also checks the `account_id` of what it
gets back, so a call never reaches an object of another account.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from openivr.engine.vocabulary import (
    ACTIONS,
    APP_TYPES,
    MENU_SLOTS,
    STANDARD_PROMPTS,
    STRATEGIES,
    Action,
    AppType,
    Strategy,
    one_of,
)

if TYPE_CHECKING:
    from openivr.engine.hours import ScheduleConfig


class ConfigError(ValueError):
    """A configuration value the engine cannot use; names the field."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass(frozen=True, slots=True)
class MenuAction:
    """One menu entry or final action: `action` / `to` / `id` as in the compatible API."""

    action: Action = ""
    to: str = ""
    id: str = ""

    @property
    def in_use(self) -> bool:
        """Whether this entry does anything (an empty action means 'digit not in use')."""
        return self.action != ""

    def to_dict(self) -> dict[str, str]:
        """The API shape of this action."""
        return {"action": self.action, "to": self.to, "id": self.id}

    @classmethod
    def from_api(cls, field_name: str, raw: Any) -> MenuAction:
        """Parse `{"action", "to", "id"}`; None or {} is an unused entry."""
        if raw is None:
            return UNUSED
        if not isinstance(raw, Mapping):
            raise ConfigError(field_name, "must be an object with action, to and id")
        parts: list[str] = []
        for part in ("action", "to", "id"):
            value = raw.get(part, "")
            if value is None:
                value = ""
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise ConfigError(f"{field_name}.{part}", "must be a string")
            parts.append(str(value).strip())
        action = one_of(parts[0], ACTIONS)
        if action is None:
            raise ConfigError(f"{field_name}.action", f"unknown action {parts[0]!r}")
        return cls(action, parts[1], parts[2])


UNUSED = MenuAction()


@dataclass(frozen=True, slots=True)
class OpenHours:
    """An IVR's opening hours: outside schedule `schedule_id` callers get `closed_action`."""

    schedule_id: str
    closed_action: MenuAction = UNUSED

    @classmethod
    def from_api(cls, raw: Any) -> OpenHours | None:
        """Parse `{"schedule_id", "closed_action"}`; None, {} or no schedule_id: always open."""
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise ConfigError("open_hours", "must be an object with schedule_id and closed_action")
        schedule_id = raw.get("schedule_id") or ""
        if not isinstance(schedule_id, str):
            raise ConfigError("open_hours.schedule_id", "must be a string")
        if not schedule_id.strip():
            return None
        closed = MenuAction.from_api("open_hours.closed_action", raw.get("closed_action"))
        return cls(schedule_id.strip(), closed)


@dataclass(frozen=True, slots=True)
class TeamConfig:
    """A team (the hosted API's "call service group"): users rung together or in turn.

    `all` rings every member at once for `ring_seconds`; `order` rings one member after
    another, `ring_seconds` each; `rotate` is `order` starting after the member who answered
    last. `max_seconds` bounds the whole team; `no_answer` runs when nobody answered.
    """

    team_id: str
    account_id: str
    name: str = ""
    members: tuple[str, ...] = ()  # user ids, in ringing order
    strategy: Strategy = "all"
    ring_seconds: float = 20.0
    max_seconds: float = 60.0
    no_answer: MenuAction = UNUSED

    @classmethod
    def from_api(cls, payload: Mapping[str, Any], *, account_id: str) -> TeamConfig:
        """Build from a team in the API's shape."""
        if not isinstance(payload, Mapping):
            raise ConfigError("team", "must be an object")
        members = payload.get("members") or []
        if not isinstance(members, list | tuple) or not all(
            isinstance(m, str | int) and not isinstance(m, bool) for m in members
        ):
            raise ConfigError("members", "must be a list of user ids")
        strategy = one_of(_text(payload, "strategy") or "all", STRATEGIES)
        if strategy is None:
            raise ConfigError("strategy", f"must be one of {', '.join(STRATEGIES)}")
        return cls(
            team_id=_text(payload, "team_id", required=True),
            account_id=account_id,
            name=_text(payload, "name"),
            members=tuple(str(m).strip() for m in members),
            strategy=strategy,
            ring_seconds=_number(payload, "ring_seconds", 20.0),
            max_seconds=_number(payload, "max_seconds", 60.0),
            no_answer=MenuAction.from_api("no_answer", payload.get("no_answer")),
        )


@dataclass(frozen=True, slots=True)
class AppConfig:
    """A voice app as the engine sees it (all three app types share one shape)."""

    app_id: str
    account_id: str
    app_type: AppType
    name: str = ""
    voice: str = "en"
    # ivr
    play_welcome: bool = True
    play_menu: bool = True
    get_extension: bool = False
    menu: Mapping[str, MenuAction] = field(default_factory=dict)  # keys from MENU_SLOTS
    final_action: MenuAction = UNUSED
    menu_timeout: float = 5.0
    interdigit_timeout: float = 2.0
    max_retries: int = 3
    # mailbox
    greeting_prompt: bool = True
    goodbye_prompt: bool = True
    max_message_seconds: float = 120.0
    max_messages: int = 100
    # sysprompt
    error_voice: str = ""
    error_repeat_voice: str = ""
    usermailbox_voice: str = ""
    # "<app_id>@<sip domain>": a `call` to this address enters the app (no SIP leaves the node)
    sip_address: str = ""
    # ivr: outside these hours callers get the closed action instead (None: always open)
    open_hours: OpenHours | None = None

    @property
    def is_menu(self) -> bool:
        """An ivr app that runs its digit menu."""
        return self.app_type == "ivr" and self.play_menu

    @property
    def is_announcement(self) -> bool:
        """An ivr app with play_menu 'no': welcome, then final_action."""
        return self.app_type == "ivr" and not self.play_menu

    def action(self, slot: str) -> MenuAction:
        """The menu entry in `slot` (digit_1, digit_star, timeout, invalid ...), unused if absent."""
        return self.menu.get(slot, UNUSED)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any], *, account_id: str | None = None) -> AppConfig:
        """Build from a voice app in the compatible API's shape (yes/no strings, menu object)."""
        if not isinstance(payload, Mapping):
            raise ConfigError("voiceapp", "must be an object")
        app_id = _text(payload, "app_id", required=True)
        account = account_id if account_id is not None else _text(payload, "account_id")
        if not account:
            raise ConfigError("account_id", "is required")
        app_type = one_of(_text(payload, "app_type", required=True), APP_TYPES)
        if app_type is None:
            raise ConfigError("app_type", f"must be one of {', '.join(APP_TYPES)}")
        raw_menu = payload.get("menu") or {}
        if not isinstance(raw_menu, Mapping):
            raise ConfigError("menu", "must be an object")
        unknown = set(raw_menu) - set(MENU_SLOTS)
        if unknown:
            raise ConfigError("menu", f"unknown keys {sorted(unknown)}")
        menu = {
            slot: MenuAction.from_api(f"menu.{slot}", raw)
            for slot, raw in raw_menu.items()
            if raw is not None
        }
        return cls(
            app_id=app_id,
            account_id=account,
            app_type=app_type,
            name=_text(payload, "name"),
            voice=_text(payload, "voice") or "en",
            play_welcome=_yes_no(payload, "play_welcome", True),
            play_menu=_yes_no(payload, "play_menu", True),
            get_extension=_yes_no(payload, "get_extension", False),
            menu=menu,
            final_action=MenuAction.from_api("final_action", payload.get("final_action")),
            menu_timeout=_number(payload, "menu_timeout", 5.0),
            interdigit_timeout=_number(payload, "interdigit_timeout", 2.0),
            max_retries=int(_number(payload, "max_retries", 3)),
            greeting_prompt=_yes_no(payload, "greeting_prompt", True),
            goodbye_prompt=_yes_no(payload, "goodbye_prompt", True),
            max_message_seconds=_number(payload, "max_message_seconds", 120.0),
            max_messages=int(_number(payload, "max_messages", 100)),
            error_voice=_text(payload, "error_voice"),
            error_repeat_voice=_text(payload, "error_repeat_voice"),
            usermailbox_voice=_text(payload, "usermailbox_voice"),
            sip_address=_text(payload, "sip_address"),
            open_hours=OpenHours.from_api(payload.get("open_hours")) if app_type == "ivr" else None,
        )


@dataclass(frozen=True, slots=True)
class UserConfig:
    """A user a call can ring: their registered phones, else SIP URI, else phone number (the
    rule is `route_transfer` in engine/call.py)."""

    user_id: str
    account_id: str
    name: str = ""
    extension: str = ""
    sip_uri: str = ""
    phnum: str = ""

    @property
    def call_target(self) -> str:
        """How a call to this user is named: sip_uri, else phnum, else user:<id> (their
        registered phones, if any)."""
        return self.sip_uri or self.phnum or f"user:{self.user_id}"


@dataclass(frozen=True, slots=True)
class PromptRef:
    """A prompt to play: standard prompts have a `key` and always some audio (a default)."""

    prompt_id: str
    app_id: str
    account_id: str
    name: str
    key: str | None = None
    text: str | None = None
    has_audio: bool = True
    record_code: int | None = None  # what a user keys in to record it by phone (*22)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "prompt_id": self.prompt_id,
            "app_id": self.app_id,
            "name": self.name,
            "key": self.key,
            "text": self.text,
            "has_audio": self.has_audio,
        }


class CallConfig(Protocol):
    """The account data a call reads. Implemented by the store; `StaticConfig` for tests."""

    def app(self, app_id: str) -> AppConfig | None:
        """The voice app with this id (app ids are unique across accounts)."""

    def user(self, account_id: str, user_id: str) -> UserConfig | None:
        """A user of this account."""

    def user_by_extension(self, account_id: str, extension: str) -> UserConfig | None:
        """The user of this account whose extension is `extension`."""

    def prompt(self, account_id: str, prompt_id: str) -> PromptRef | None:
        """Any prompt (standard or custom) of this account by id."""

    def standard_prompt(self, app_id: str, key: str) -> PromptRef | None:
        """The standard prompt `key` (welcome, menu, greeting ...) of an app."""

    def prompt_by_code(self, account_id: str, record_code: int) -> PromptRef | None:
        """The prompt of this account with this `record_code` (recording by phone)."""

    def sysprompt_app(self, account_id: str) -> AppConfig | None:
        """The account's sysprompt app (system messages and their voices)."""

    def message_count(self, app_id: str) -> int:
        """How many voicemails a mailbox holds now."""

    def team(self, account_id: str, team_id: str) -> TeamConfig | None:
        """A team of this account."""

    def schedule(self, account_id: str, schedule_id: str) -> ScheduleConfig | None:
        """A schedule (opening hours) of this account."""

    def last_answered(self, team_id: str) -> str | None:
        """The member of a team who answered its last call (where `rotate` starts after)."""


def default_standard_prompt(app: AppConfig, key: str) -> PromptRef | None:
    """The standard prompt `key` of `app` with its default recording, or None if not a standard key."""
    for standard in STANDARD_PROMPTS.get(app.app_type, ()):
        if standard.key == key:
            return PromptRef(
                prompt_id=f"{app.app_id}.{key}",
                app_id=app.app_id,
                account_id=app.account_id,
                name=standard.name,
                key=key,
                text=None,
                has_audio=True,
            )
    return None


def system_prompt(config: CallConfig, account_id: str, key: str) -> tuple[PromptRef, str] | None:
    """A system message of the account (its sysprompt app's standard prompt `key`: a recorded
    message, else the default) and the voice it is spoken in; None without a sysprompt app."""
    app = config.sysprompt_app(account_id)
    if app is None or app.account_id != account_id:
        return None
    found = config.standard_prompt(app.app_id, key)
    if found is None or found.account_id != account_id:
        found = default_standard_prompt(app, key)
    return (found, app.voice or "en") if found is not None else None


class StaticConfig:
    """An in-memory `CallConfig` holding any number of accounts (tests, simulator, bench).

    Standard prompts not given explicitly exist with their default recording.
    """

    def __init__(
        self,
        apps: Iterable[AppConfig] = (),
        users: Iterable[UserConfig] = (),
        prompts: Iterable[PromptRef] = (),
        message_counts: Mapping[str, int] | None = None,
        teams: Iterable[TeamConfig] = (),
        schedules: Iterable[ScheduleConfig] = (),
        last_answered: Mapping[str, str] | None = None,
    ) -> None:
        self.apps: dict[str, AppConfig] = {}
        for app in apps:
            if app.app_id in self.apps:
                raise ConfigError("app_id", f"duplicate app {app.app_id!r}")
            self.apps[app.app_id] = app
        self.users: dict[tuple[str, str], UserConfig] = {}
        self._extensions: dict[tuple[str, str], UserConfig] = {}
        for user in users:
            self.users[(user.account_id, user.user_id)] = user
            if user.extension:
                self._extensions[(user.account_id, user.extension)] = user
        self.prompts: dict[tuple[str, str], PromptRef] = {}
        self._standard: dict[tuple[str, str], PromptRef] = {}
        self._codes: dict[tuple[str, int], PromptRef] = {}
        for prompt in prompts:
            self.prompts[(prompt.account_id, prompt.prompt_id)] = prompt
            if prompt.key is not None:
                self._standard[(prompt.app_id, prompt.key)] = prompt
            if prompt.record_code is not None:
                self._codes[(prompt.account_id, prompt.record_code)] = prompt
        # Default standard prompts are addressable by id too, as in the store.
        for app in self.apps.values():
            for standard in STANDARD_PROMPTS.get(app.app_type, ()):
                if (app.app_id, standard.key) not in self._standard:
                    ref = default_standard_prompt(app, standard.key)
                    assert ref is not None
                    self._standard[(app.app_id, standard.key)] = ref
                    self.prompts[(app.account_id, ref.prompt_id)] = ref
        self.message_counts: dict[str, int] = dict(message_counts or {})
        self.teams: dict[tuple[str, str], TeamConfig] = {
            (team.account_id, team.team_id): team for team in teams
        }
        self.schedules: dict[tuple[str, str], ScheduleConfig] = {
            (schedule.account_id, schedule.schedule_id): schedule for schedule in schedules
        }
        self.last_answered_by: dict[str, str] = dict(last_answered or {})

    def with_prompts(self, prompts: Iterable[PromptRef]) -> StaticConfig:
        """The same configuration (apps, users, teams, schedules, counts) with other prompts.

        Every field given to __init__ is passed on here, next to it, so a copy never silently
        loses a part of the account (the simulator once lost its teams and schedules this way).
        """
        return StaticConfig(
            self.apps.values(),
            self.users.values(),
            prompts,
            self.message_counts,
            self.teams.values(),
            self.schedules.values(),
            self.last_answered_by,
        )

    def app(self, app_id: str) -> AppConfig | None:
        """The voice app with this id."""
        return self.apps.get(app_id)

    def user(self, account_id: str, user_id: str) -> UserConfig | None:
        """A user of this account."""
        return self.users.get((account_id, user_id))

    def user_by_extension(self, account_id: str, extension: str) -> UserConfig | None:
        """The user of this account with this extension."""
        return self._extensions.get((account_id, extension))

    def prompt(self, account_id: str, prompt_id: str) -> PromptRef | None:
        """A prompt of this account."""
        return self.prompts.get((account_id, prompt_id))

    def standard_prompt(self, app_id: str, key: str) -> PromptRef | None:
        """A standard prompt of an app."""
        return self._standard.get((app_id, key))

    def prompt_by_code(self, account_id: str, record_code: int) -> PromptRef | None:
        """The prompt of this account with this record code."""
        return self._codes.get((account_id, record_code))

    def sysprompt_app(self, account_id: str) -> AppConfig | None:
        """The first sysprompt app of the account."""
        for app in self.apps.values():
            if app.account_id == account_id and app.app_type == "sysprompt":
                return app
        return None

    def message_count(self, app_id: str) -> int:
        """Voicemails held by a mailbox."""
        return self.message_counts.get(app_id, 0)

    def team(self, account_id: str, team_id: str) -> TeamConfig | None:
        """A team of this account."""
        return self.teams.get((account_id, team_id))

    def schedule(self, account_id: str, schedule_id: str) -> ScheduleConfig | None:
        """A schedule of this account."""
        return self.schedules.get((account_id, schedule_id))

    def last_answered(self, team_id: str) -> str | None:
        """The member who answered the team's last call."""
        return self.last_answered_by.get(team_id)


def _text(payload: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = payload.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ConfigError(name, "must be a string")
    value = str(value).strip()
    if required and not value:
        raise ConfigError(name, "is required")
    return value


def _yes_no(payload: Mapping[str, Any], name: str, default: bool) -> bool:
    value = payload.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if value in ("yes", "no"):
        return bool(value == "yes")
    raise ConfigError(name, f"must be 'yes' or 'no'; got {value!r}")


def _number(payload: Mapping[str, Any], name: str, default: float) -> float:
    value = payload.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ConfigError(name, "must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"must be a number; got {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise ConfigError(name, f"must be a finite number >= 0; got {value!r}")
    return number
