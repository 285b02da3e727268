"""Events per second through the call engine: callers walking a 3-level menu.

Run: .venv/bin/python bench/engine/run.py [--calls N] [--plain]

Each call: level 1 follows opening hours (decided at the call's instant, open), welcome + menu,
key 1 (barge-in) → connect to level 2, a wrong key, invalid-option + menu, key 2 → level 3, a
timeout with its retry, key 3 → ring a team in order: please-wait, the first member rings out,
the second answers. With --plain the same menus without opening hours, and key 3 rings one
person who answers (the flow measured before teams and schedules existed), for comparison.

Two numbers: "engine" replays the recorded events of one call into fresh CallFlow objects (only
the engine's work: CallFlow creation plus handle()); "with driver" also runs a minimal driver that
reacts to each command and builds the next event. Times are CPU time of this process (the
machine may be shared), best of 5 rounds.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from openivr.engine import AppConfig, CallFlow, MenuAction, StaticConfig, UserConfig
from openivr.engine.commands import PlayPrompt, StartTimer, Transfer
from openivr.engine.config import OpenHours, TeamConfig
from openivr.engine.events import (
    CallStarted,
    DigitPressed,
    Event,
    PromptFinished,
    TimerFired,
    TransferAnswered,
    TransferFailed,
)
from openivr.engine.hours import ScheduleConfig

# A Monday at 10:00 in Stockholm: open.
AT = datetime.fromisoformat("2026-03-30T10:00:00+02:00")


def three_levels(plain: bool = False) -> StaticConfig:
    """Account 1: level 1 (with opening hours) → 2 → 3 → team Sales (Alice, then Bob); `plain`:
    no opening hours, and level 3 rings Bob alone."""
    apps = [
        AppConfig(
            "L1",
            "1",
            "ivr",
            "Level 1",
            menu={"digit_1": MenuAction("connect", "app", "L2")},
            open_hours=None if plain else OpenHours("SC1", MenuAction("hangup")),
        ),
        AppConfig(
            "L2", "1", "ivr", "Level 2", menu={"digit_2": MenuAction("connect", "app", "L3")}
        ),
        AppConfig(
            "L3",
            "1",
            "ivr",
            "Level 3",
            menu={
                "digit_3": MenuAction("call", "user", "8")
                if plain
                else MenuAction("call", "csg", "T1")
            },
        ),
        AppConfig("SYS", "1", "sysprompt", "System"),
    ]
    users = [
        UserConfig("7", "1", "Alice", "101", "sip:alice@127.0.0.1"),
        UserConfig("8", "1", "Bob", "102", "sip:bob@127.0.0.1"),
    ]
    team = TeamConfig("T1", "1", "Sales", ("7", "8"), "order", 15.0, 60.0)
    office = ScheduleConfig.from_api(
        {
            "schedule_id": "SC1",
            "timezone": "Europe/Stockholm",
            "weekly": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "17:00"}
            ],
            "closed_dates": ["2026-12-24", "2026-12-25"],
        },
        account_id="1",
    )
    return StaticConfig(apps, users, teams=[team], schedules=[office])


# What the caller does when the engine waits for a key, by how many waits came before.
KEYS = {0: "1", 1: "9", 2: "2", 3: None, 4: "3"}


def one_call(config: StaticConfig, record: list[Event] | None = None) -> int:
    """Run one call to its end; return how many events the engine handled."""
    call = CallFlow(config, "L1")
    now = 0.0
    waits = 0
    events = 0
    pending: list[Event] = [CallStarted(now, "+4611", "+4622", AT)]
    while pending:
        event = pending.pop()
        events += 1
        if record is not None:
            record.append(event)
        for command in call.handle(event):
            now += 0.001
            if isinstance(command, PlayPrompt):
                if command.barge_in and waits == 0 and command.prompt.key == "welcome":
                    pending.append(DigitPressed(now, "1"))  # barge-in at level 1
                    waits = 1
                    break
                pending.append(PromptFinished(now, command.play_id))
            elif isinstance(command, StartTimer):
                key = KEYS.get(waits)
                waits += 1
                if key is None:
                    pending.append(TimerFired(now, command.timer_id))
                else:
                    pending.append(DigitPressed(now, key))
            elif isinstance(command, Transfer):
                # The team's first member rings out; the second answers (one person: answers).
                if command.team_id is not None and command.attempt == 1:
                    pending.append(TransferFailed(now, "no_answer"))
                else:
                    pending.append(TransferAnswered(now))
    assert call.outcome is not None and call.outcome.kind == "transferred", call.outcome
    return events


def main() -> None:
    """Measure and print events per second."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument(
        "--plain", action="store_true", help="no opening hours, one person instead of a team"
    )
    args = parser.parse_args()
    config = three_levels(args.plain)
    script: list[Event] = []
    per_call = one_call(config, script)  # warm-up, sanity check, and the events to replay
    engine = driven = 0.0
    for _ in range(5):
        start = time.process_time()
        for _ in range(args.calls):
            call = CallFlow(config, "L1")
            for event in script:
                call.handle(event)
        engine = max(engine, per_call * args.calls / (time.process_time() - start))
        start = time.process_time()
        for _ in range(args.calls):
            one_call(config)
        driven = max(driven, per_call * args.calls / (time.process_time() - start))
    flow = "one person, no opening hours" if args.plain else "with opening hours and a team"
    print(f"{args.calls} calls x {per_call} events, 3-level menu {flow}, best of 5 (CPU time)")
    print(f"engine:      {engine:,.0f} events/s ({engine / per_call:,.0f} calls/s)")
    print(f"with driver: {driven:,.0f} events/s")


if __name__ == "__main__":
    main()
