"""One simulated call per rule of the call flow: config, what the caller does, what happens.

Every prompt lasts 2 s. `prompts` lists prompt ids in the order played ("!" = cut short);
`keys` lists how each key (and each multi-digit entry) was understood.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from openivr.engine import PromptRef, simulate

from .accounts import ALICE_SIP, CAROL_PHNUM, action, build, call_user, connect, play

MAIN_WELCOME_MENU = ["VAmain.welcome", "VAmain.menu"]
RETRY = ["VAsys.no_input", "VAmain.menu"]
INVALID = ["VAsys.invalid_option", "VAmain.menu"]
BOX = {"app_id": "VAbox", "app_type": "mailbox", "name": "Box"}


@dataclass
class Scenario:
    name: str
    timeline: Any
    prompts: list[str]
    outcome: str
    main: dict[str, Any] = field(default_factory=dict)
    apps: list[dict[str, Any]] = field(default_factory=list)
    entry: str = "VAmain"
    target: str | None = None
    voicemail: float | None = None
    keys: list[str] | None = None
    apps_entered: list[str] | None = None
    total: float | None = None
    counts: dict[str, int] = field(default_factory=dict)


def menu(**slots: dict[str, str]) -> dict[str, Any]:
    return {"menu": slots}


SCENARIOS = [
    Scenario(
        "a menu key calls a user at their SIP address",
        "1",
        [*MAIN_WELCOME_MENU, "VAmain.please_wait"],
        "transferred",
        main=menu(digit_1=call_user("7")),
        target=ALICE_SIP,
        keys=["menu option 1 → call user 7"],
        total=2 + 2 + 2 + 4,
    ),
    Scenario(
        "play_welcome no starts with the menu",
        "1",
        ["VAmain.menu", "VAmain.please_wait"],
        "transferred",
        main={**menu(digit_1=call_user("7")), "play_welcome": "no"},
        target=ALICE_SIP,
    ),
    Scenario(
        "a key during the welcome interrupts it and skips the menu prompt",
        [{"key": "1", "during": "welcome", "after": 0.5}],
        ["VAmain.welcome!", "VAmain.please_wait"],
        "transferred",
        main=menu(digit_1=call_user("7")),
        target=ALICE_SIP,
        total=0.5 + 2 + 4,
    ),
    Scenario(
        "a key during the menu prompt interrupts it",
        [{"key": "1", "during": "menu", "after": 1}],
        ["VAmain.welcome", "VAmain.menu!", "VAmain.please_wait"],
        "transferred",
        main=menu(digit_1=call_user("7")),
        target=ALICE_SIP,
        total=2 + 1 + 2 + 4,
    ),
    Scenario(
        "an unconfigured digit says invalid option and repeats the menu",
        "51",
        [*MAIN_WELCOME_MENU, *INVALID, "VAmain.please_wait"],
        "transferred",
        main=menu(digit_1=call_user("7")),
        target=ALICE_SIP,
        keys=["invalid", "menu option 1 → call user 7"],
    ),
    Scenario(
        "the invalid entry runs instead of the invalid-option message",
        ["5", {"record": 3}],
        [*MAIN_WELCOME_MENU, "VAvm.greeting", "VAvm.goodbye"],
        "voicemail",
        main=menu(digit_1=call_user("7"), invalid=connect("VAvm")),
        voicemail=3.0,
        apps_entered=["VAmain", "VAvm"],
    ),
    Scenario(
        "no key: the menu repeats max_retries times, then the timeout action runs",
        [{"record": 4}],
        [*MAIN_WELCOME_MENU, *RETRY, *RETRY, *RETRY, "VAvm.greeting", "VAvm.goodbye"],
        "voicemail",
        main=menu(digit_1=call_user("7"), timeout=connect("VAvm")),
        voicemail=4.0,
    ),
    Scenario(
        "no key and no timeout action: goodbye and hang up",
        [],
        [*MAIN_WELCOME_MENU, *RETRY, *RETRY, *RETRY, "VAsys.goodbye"],
        "hangup",
        main=menu(digit_1=call_user("7")),
        total=4 + 5 + 3 * (4 + 5) + 2,
    ),
    Scenario(
        "max_retries 1 repeats the menu once",
        [],
        [*MAIN_WELCOME_MENU, *RETRY, "VAsys.goodbye"],
        "hangup",
        main={**menu(digit_1=call_user("7")), "max_retries": 1},
        total=4 + 5 + 4 + 5 + 2,
    ),
    Scenario(
        "menu_timeout sets how long the menu waits for a key",
        [],
        [*MAIN_WELCOME_MENU, "VAsys.goodbye"],
        "hangup",
        main={**menu(digit_1=call_user("7")), "max_retries": 0, "menu_timeout": 8},
        total=4 + 8 + 2,
    ),
    Scenario(
        "a key pressed late lands in the prompt that plays by then",
        [{"key": "1", "after": 6}],
        [*MAIN_WELCOME_MENU, "VAsys.no_input!", "VAmain.please_wait"],
        "transferred",
        main=menu(digit_1=call_user("7")),
        target=ALICE_SIP,
        total=4 + 6 + 2 + 4,
    ),
    Scenario(
        "get_extension: a user's extension calls that user",
        "101",
        [*MAIN_WELCOME_MENU, "VAmain.please_wait"],
        "transferred",
        main={**menu(digit_1=call_user("9")), "get_extension": "yes"},
        target=ALICE_SIP,
        keys=[
            "collecting 1",
            "collecting 10",
            "collecting 101",
            "101 (no more keys in 2 s): extension 101 → call user 7",
        ],
        total=4 + 2 + 2 + 4,
    ),
    Scenario(
        "get_extension: a lone configured digit waits interdigit_timeout, then runs",
        "1",
        [*MAIN_WELCOME_MENU, "VAmain.please_wait"],
        "transferred",
        main={**menu(digit_1=call_user("9")), "get_extension": "yes"},
        target=CAROL_PHNUM,
        keys=["collecting 1", "1 (no more keys in 2 s): menu option 1 → call user 9"],
        total=4 + 2 + 2 + 4,
    ),
    Scenario(
        "get_extension: '#' ends the entry at once",
        "1#",
        [*MAIN_WELCOME_MENU, "VAmain.please_wait"],
        "transferred",
        main={**menu(digit_1=call_user("9")), "get_extension": "yes"},
        target=CAROL_PHNUM,
        keys=["collecting 1", "end of entry 1: menu option 1 → call user 9"],
        total=4 + 2 + 4,
    ),
    Scenario(
        "get_extension: interdigit_timeout sets the wait",
        "103",
        [*MAIN_WELCOME_MENU, "VAmain.please_wait"],
        "transferred",
        main={"get_extension": "yes", "interdigit_timeout": 4},
        target=CAROL_PHNUM,
        total=4 + 4 + 2 + 4,
    ),
    Scenario(
        "get_extension: an entry that is neither digit nor extension is invalid",
        "55#",
        [*MAIN_WELCOME_MENU, *INVALID, *RETRY, *RETRY, "VAsys.goodbye"],
        "hangup",
        main={**menu(digit_1=call_user("9")), "get_extension": "yes"},
        keys=["collecting 5", "collecting 55", "end of entry 55: invalid entry 55"],
    ),
    Scenario(
        "get_extension: '*' first is the star menu key, decided at once",
        ["*", {"record": 2}],
        [*MAIN_WELCOME_MENU, "VAvm.greeting", "VAvm.goodbye"],
        "voicemail",
        main={**menu(digit_star=connect("VAvm")), "get_extension": "yes"},
        voicemail=2.0,
        keys=["menu option * → connect to app VAvm"],
    ),
    Scenario(
        "digit_hash is a menu key",
        "#",
        MAIN_WELCOME_MENU,
        "hangup",
        main=menu(digit_hash=action("hangup")),
        keys=["menu option # → hang up"],
        total=4,
    ),
    Scenario(
        "announcement: welcome, then the final action calls a number",
        "",
        ["VAmain.welcome", "VAmain.please_wait"],
        "transferred",
        main={"play_menu": "no", "final_action": action("call", "phnum", "+4612345678")},
        target="+4612345678",
        total=2 + 2 + 4,
    ),
    Scenario(
        "announcement: a key does not stop it (kept for a menu; none follows)",
        [{"key": "1", "during": "welcome"}],
        ["VAmain.welcome"],
        "hangup",
        main={"play_menu": "no", "final_action": action("hangup")},
        keys=["kept for the next menu"],
        total=2,
    ),
    Scenario(
        "announcement without a final action hangs up after the welcome",
        "",
        ["VAmain.welcome"],
        "hangup",
        main={"play_menu": "no"},
        total=2,
    ),
    Scenario(
        "a connect loop stops after 10 hops with 'unavailable'",
        "",
        ["VAmain.welcome"] * 11 + ["VAsys.unavailable"],
        "hangup",
        main={"play_menu": "no", "final_action": connect("VAmain")},
        apps_entered=["VAmain"] * 11,
    ),
    Scenario(
        "a user with no phone registered, no sip_uri, no phnum: unavailable, back to the menu",
        ["1", {"hangup": True}],
        [*MAIN_WELCOME_MENU, "VAmain.please_wait", "VAsys.unavailable", "VAmain.menu"],
        "caller_hangup",
        main=menu(digit_1=call_user("8")),
    ),
    Scenario(
        "call sip",
        "1",
        [*MAIN_WELCOME_MENU, "VAmain.please_wait"],
        "transferred",
        main=menu(digit_1=action("call", "sip", "sip:desk@127.0.0.1")),
        target="sip:desk@127.0.0.1",
    ),
    Scenario(
        "call other: a number",
        "1",
        [*MAIN_WELCOME_MENU, "VAmain.please_wait"],
        "transferred",
        main=menu(digit_1=action("call", "other", "+4433221100")),
        target="+4433221100",
    ),
    Scenario(
        "connect to another menu plays its welcome and menu",
        "21",
        [*MAIN_WELCOME_MENU, "VAsales.welcome", "VAsales.menu", "VAsales.please_wait"],
        "transferred",
        main=menu(digit_2=connect("VAsales")),
        apps=[{"app_id": "VAsales", "app_type": "ivr", "menu": {"digit_1": call_user("7")}}],
        target=ALICE_SIP,
        apps_entered=["VAmain", "VAsales"],
    ),
    Scenario(
        "play a prompt, then the menu again",
        ["3", {"hangup": True}],
        [*MAIN_WELCOME_MENU, "P1", "VAmain.menu"],
        "caller_hangup",
        main=menu(digit_3=play("P1")),
    ),
    Scenario(
        "a prompt without audio is skipped",
        ["3", {"hangup": True}],
        [*MAIN_WELCOME_MENU, "VAmain.menu"],
        "caller_hangup",
        main=menu(digit_3=play("P2")),
    ),
    Scenario(
        "hangup action hangs up at once",
        "8",
        MAIN_WELCOME_MENU,
        "hangup",
        main=menu(digit_8=action("hangup")),
        total=4,
    ),
    Scenario(
        "repeat action plays the menu again, without the welcome",
        ["9", {"hangup": True}],
        [*MAIN_WELCOME_MENU, "VAmain.menu"],
        "caller_hangup",
        main=menu(digit_9=action("repeat")),
    ),
    Scenario(
        "a busy transfer says unavailable and returns to the menu",
        ["1", {"transfer": "busy"}, {"hangup": True}],
        [*MAIN_WELCOME_MENU, "VAmain.please_wait", "VAsys.unavailable", "VAmain.menu"],
        "caller_hangup",
        main=menu(digit_1=call_user("7")),
        total=4 + 2 + 1 + 2 + 2,
    ),
    Scenario(
        "announcement: an unanswered final action says unavailable and hangs up",
        [{"transfer": "no_answer"}],
        ["VAmain.welcome", "VAmain.please_wait", "VAsys.unavailable"],
        "hangup",
        main={"play_menu": "no", "final_action": call_user("7")},
        total=2 + 2 + 20 + 2,
    ),
    Scenario(
        "announcement: a failing final action falls back to the timeout entry",
        [{"record": 5}],
        [
            "VAmain.welcome",
            "VAmain.please_wait",
            "VAsys.unavailable",
            "VAvm.greeting",
            "VAvm.goodbye",
        ],
        "voicemail",
        main={
            "play_menu": "no",
            "final_action": call_user("8"),
            "menu": {"timeout": connect("VAvm")},
        },
        voicemail=5.0,
    ),
    Scenario(
        "mailbox: greeting, beep, message until '#', goodbye",
        [{"record": 12}],
        ["VAvm.greeting", "VAvm.goodbye"],
        "voicemail",
        entry="VAvm",
        voicemail=12.0,
        total=2 + 0.5 + 12 + 2,
    ),
    Scenario(
        "mailbox without greeting and goodbye prompts",
        [{"record": 3}],
        [],
        "voicemail",
        apps=[{**BOX, "greeting_prompt": "no", "goodbye_prompt": "no"}],
        entry="VAbox",
        voicemail=3.0,
        total=0.5 + 3,
    ),
    Scenario(
        "a full mailbox says unavailable and hangs up",
        [{"record": 3}],
        ["VAsys.unavailable"],
        "hangup",
        apps=[{**BOX, "max_messages": 2}],
        entry="VAbox",
        counts={"VAbox": 2},
    ),
    Scenario(
        "a message shorter than 1 s is discarded and the caller is told so",
        [{"record": 0.5}],
        ["VAvm.greeting", "VAsys.no_message"],
        "hangup",
        entry="VAvm",
    ),
    Scenario(
        "a silent caller is told no message was recorded, not thanked for one",
        [],
        ["VAvm.greeting", "VAsys.no_message"],
        "hangup",
        entry="VAvm",
    ),
    Scenario(
        "a caller who hangs up mid-message still leaves it",
        [{"record": 7, "end": "hangup"}],
        ["VAvm.greeting"],
        "voicemail",
        entry="VAvm",
        voicemail=7.0,
    ),
    Scenario(
        "max_message_seconds cuts a long message",
        [{"record": 60}],
        ["VAbox.greeting", "VAbox.goodbye"],
        "voicemail",
        apps=[{**BOX, "max_message_seconds": 30}],
        entry="VAbox",
        voicemail=30.0,
    ),
    Scenario(
        "5 s of silence end a message",
        [{"record": 6, "end": "silence"}],
        ["VAvm.greeting", "VAvm.goodbye"],
        "voicemail",
        entry="VAvm",
        voicemail=6.0,
        total=2 + 0.5 + 6 + 5 + 2,
    ),
    Scenario(
        "the caller hangs up during the menu",
        [{"hangup": True, "during": "menu", "after": 1}],
        ["VAmain.welcome", "VAmain.menu!"],
        "caller_hangup",
        main=menu(digit_1=call_user("7")),
        total=3,
    ),
    Scenario(
        "connect to an app that no longer exists: unavailable, back to the menu",
        ["1", {"hangup": True}],
        [*MAIN_WELCOME_MENU, "VAsys.unavailable", "VAmain.menu"],
        "caller_hangup",
        main=menu(digit_1=connect("VAgone")),
    ),
    Scenario(
        "a user of another account is never called",
        ["1", {"hangup": True}],
        [*MAIN_WELCOME_MENU, "VAsys.unavailable", "VAmain.menu"],
        "caller_hangup",
        main=menu(digit_1=call_user("70")),
    ),
    Scenario(
        "an app of another account is never entered",
        ["1", {"hangup": True}],
        [*MAIN_WELCOME_MENU, "VAsys.unavailable", "VAmain.menu"],
        "caller_hangup",
        main=menu(digit_1=connect("VAother")),
        apps_entered=["VAmain"],
    ),
    Scenario(
        "a prompt of another account is never played",
        ["1", {"hangup": True}],
        [*MAIN_WELCOME_MENU, "VAsys.unavailable", "VAmain.menu"],
        "caller_hangup",
        main=menu(digit_1=play("P70")),
    ),
    Scenario(
        "too many wrong keys: goodbye",
        "5555",
        [*MAIN_WELCOME_MENU, *INVALID, *INVALID, *INVALID, "VAsys.goodbye"],
        "hangup",
        main=menu(digit_1=call_user("7")),
        keys=["invalid"] * 4,
    ),
    Scenario(
        "a timeout entry 'repeat' plays the menu once more, then goodbye",
        [],
        [*MAIN_WELCOME_MENU, *RETRY, "VAmain.menu", "VAsys.goodbye"],
        "hangup",
        main={**menu(digit_1=call_user("7"), timeout=action("repeat")), "max_retries": 1},
    ),
]


def _played(entry: Any) -> str:
    return entry.data["prompt_id"] + ("!" if entry.data["interrupted"] else "")


@pytest.mark.parametrize("case", SCENARIOS, ids=[case.name for case in SCENARIOS])
def test_scenario(case: Scenario) -> None:
    config = build(case.main, apps=case.apps, message_counts=case.counts)

    def two_seconds(prompt: PromptRef, voice: str) -> float:
        return 2.0

    transcript = simulate(
        config, case.entry, "+4611111111", "+4622222222", case.timeline, two_seconds
    )

    assert not transcript.truncated and not transcript.stalled
    assert [_played(e) for e in transcript.of_kind("prompt")] == case.prompts
    assert transcript.outcome is not None
    assert transcript.outcome.kind == case.outcome
    if case.target is not None:
        assert transcript.outcome.target == case.target
    if case.voicemail is not None:
        assert transcript.outcome.voicemail_seconds == pytest.approx(case.voicemail)
    if case.keys is not None:
        understood = [e.text for e in transcript.entries if e.kind in ("key", "input")]
        assert understood == case.keys
    if case.apps_entered is not None:
        assert [e.data["app_id"] for e in transcript.of_kind("app")] == case.apps_entered
    if case.total is not None:
        assert transcript.total_seconds == pytest.approx(case.total)
