"""The call driver hands the engine events in a time that never goes back: an event stamped
when it was queued (a timer, a transfer's end) may be taken after one stamped when it was taken
(keys handed over as a transfer ends). CI once saw the engine refuse such a pair mid-call and
the call end as an error instead of playing the menu again."""

from __future__ import annotations

from typing import Any

from openivr.calls.driver import CallDriver
from openivr.engine import events as ev


class _Engine:
    ended = False
    outcome = None

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def handle(self, event: Any) -> list[Any]:
        if self.seen and event.now < self.seen[-1].now:  # as the real engine refuses it
            raise ValueError("event time must not go back")
        self.seen.append(event)
        return []


async def test_an_event_queued_earlier_reaches_the_engine_at_the_later_time() -> None:
    driver = CallDriver.__new__(CallDriver)  # only the feeding half is under test
    engine = _Engine()
    driver.engine = engine  # type: ignore[assignment]
    driver.fed_at = 0.0
    await driver._feed(ev.DigitPressed(6.07, "2"))  # taken from the queue at 6.07 s
    await driver._feed(ev.TransferFailed(6.069, "no_answer"))  # stamped when the ring ended
    await driver._feed(ev.TimerFired(7.5, 3))
    assert [(type(e).__name__, e.now) for e in engine.seen] == [
        ("DigitPressed", 6.07),
        ("TransferFailed", 6.07),
        ("TimerFired", 7.5),
    ]
    assert engine.seen[1].reason == "no_answer"
