"""Random accounts and random callers: every call ends, in bounded steps, inside its account."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openivr.engine import AppConfig, MenuAction, PromptRef, StaticConfig, UserConfig, simulate
from openivr.engine.graph import graph
from openivr.engine.validate import validate
from openivr.engine.vocabulary import MENU_SLOTS

ACCOUNTS = ("A", "B")
APP_IDS = [f"VA{acc}{i}" for acc in ACCOUNTS for i in range(4)] + ["VAmissing"]
USER_IDS = [f"{acc}{i}" for acc in ACCOUNTS for i in range(3)] + ["404"]
PROMPT_IDS = [f"P{acc}{i}" for acc in ACCOUNTS for i in range(2)] + ["Pmissing"]
PROMPT_NAMES = ["welcome", "menu", "please_wait", "invalid_option", "no_input", "greeting"]

actions = st.one_of(
    st.just(MenuAction()),
    st.builds(lambda u: MenuAction("call", "user", u), st.sampled_from(USER_IDS)),
    st.just(MenuAction("call", "phnum", "+46700000000")),
    st.just(MenuAction("call", "sip", "sip:desk@127.0.0.1")),
    st.builds(lambda a: MenuAction("connect", "app", a), st.sampled_from(APP_IDS)),
    st.builds(lambda p: MenuAction("play", "prompt", p), st.sampled_from(PROMPT_IDS)),
    st.just(MenuAction("hangup")),
    st.just(MenuAction("repeat")),
)


@st.composite
def apps_of(draw: st.DrawFn, account: str) -> list[AppConfig]:
    apps = []
    for i in range(4):
        kind = draw(st.sampled_from(["menu", "menu", "announcement", "mailbox"]))
        app_id = f"VA{account}{i}"
        if kind == "mailbox":
            apps.append(
                AppConfig(
                    app_id,
                    account,
                    "mailbox",
                    greeting_prompt=draw(st.booleans()),
                    goodbye_prompt=draw(st.booleans()),
                    max_message_seconds=draw(st.sampled_from([5.0, 30.0, 120.0])),
                    max_messages=draw(st.integers(1, 3)),
                )
            )
            continue
        slots = draw(st.lists(st.sampled_from(MENU_SLOTS), max_size=8, unique=True))
        apps.append(
            AppConfig(
                app_id,
                account,
                "ivr",
                play_welcome=draw(st.booleans()),
                play_menu=kind == "menu",
                get_extension=draw(st.booleans()),
                menu={slot: draw(actions) for slot in slots},
                final_action=draw(actions),
                menu_timeout=draw(st.sampled_from([1.0, 5.0])),
                interdigit_timeout=draw(st.sampled_from([1.0, 2.0])),
                max_retries=draw(st.integers(0, 3)),
            )
        )
    if draw(st.booleans()):
        apps.append(AppConfig(f"VA{account}sys", account, "sysprompt", error_voice="spa"))
    return apps


@st.composite
def accounts(draw: st.DrawFn) -> StaticConfig:
    apps = [app for acc in ACCOUNTS for app in draw(apps_of(acc))]
    users = []
    for acc in ACCOUNTS:
        for i in range(3):
            users.append(
                UserConfig(
                    f"{acc}{i}",
                    acc,
                    extension=draw(st.sampled_from(["", f"1{i}", f"{i}"])),
                    sip_uri=draw(st.sampled_from(["", f"sip:{acc}{i}@127.0.0.1"])),
                    phnum=draw(st.sampled_from(["", f"+4670{acc == 'A' and 1 or 2}00000{i}"])),
                )
            )
    prompts = [
        PromptRef(f"P{acc}{i}", f"VA{acc}0", acc, f"custom {i}", has_audio=draw(st.booleans()))
        for acc in ACCOUNTS
        for i in range(2)
    ]
    counts = {app.app_id: draw(st.integers(0, 3)) for app in apps if app.app_type == "mailbox"}
    return StaticConfig(apps, users, prompts, counts)


steps = st.one_of(
    st.builds(
        lambda k, a, d: {"key": k, **({"after": a} if a is not None else {}), **d},
        st.sampled_from(list("0123456789*#")),
        st.none() | st.floats(0, 8),
        st.just({}) | st.builds(lambda n: {"during": n}, st.sampled_from(PROMPT_NAMES)),
    ),
    st.builds(lambda a: {"hangup": True, "after": a}, st.floats(0, 30)),
    st.builds(
        lambda s, e: {"record": s, "end": e},
        st.floats(0, 200),
        st.sampled_from(["key", "silence", "hangup"]),
    ),
    st.builds(
        lambda r: {"transfer": r}, st.sampled_from(["answered", "busy", "no_answer", "unreachable"])
    ),
)


def _targets_of(config: StaticConfig, account: str) -> set[str]:
    own = {u.call_target for u in config.users.values() if u.account_id == account}
    return own | {"+46700000000", "sip:desk@127.0.0.1"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=accounts(),
    entry=st.integers(0, 3),
    timeline=st.lists(steps, max_size=12),
    duration=st.sampled_from([0.0, 0.5, 3.0]),
)
def test_every_call_ends_inside_its_account(
    config: StaticConfig, entry: int, timeline: list[dict[str, Any]], duration: float
) -> None:
    t = simulate(config, f"VAA{entry}", "+4611", "+4622", timeline, lambda p, v: duration)

    assert not t.truncated and not t.stalled
    assert t.outcome is not None
    assert t.outcome.kind in ("transferred", "voicemail", "hangup", "caller_hangup")
    # 10 connects at most, each app's menu at most a few rounds: far below the event cap.
    assert len(t.log) < 2000
    for entry_ in t.of_kind("prompt"):
        assert entry_.data["app_id"] in ("", *[a for a in config.apps if a.startswith("VAA")])
    for entry_ in t.of_kind("app"):
        assert entry_.data["app_id"].startswith("VAA")
    for entry_ in t.of_kind("transfer"):
        assert entry_.data["target"] in _targets_of(config, "A")
    if t.outcome.kind == "transferred":
        assert t.outcome.target in _targets_of(config, "A")
    json.dumps(t.to_dict())
    assert t.render_text()
    flow = graph(config, f"VAA{entry}")
    assert not any(node.startswith("app:VAB") for node in flow.nodes)
    for app_id in config.apps:
        for problem in validate(config, app_id):
            assert problem.severity in ("error", "warning") and problem.field
