"""What both ways of transferring share: the leg's record and the wait for the far end."""

from __future__ import annotations

import asyncio

from openivr.sip.transfer import Interrupted, ReplyWait, TransferLeg, status_for


class Caller:
    """Just enough of a call for a wait: it can end."""

    def __init__(self) -> None:
        self.ended = asyncio.Event()

    async def wait_ended(self) -> None:
        await self.ended.wait()


async def test_the_wait_gives_each_message_then_says_why_none_came() -> None:
    caller = Caller()
    replies: asyncio.Queue[str] = asyncio.Queue()
    async with ReplyWait(caller, 30) as wait:  # type: ignore[arg-type]
        replies.put_nowait("180")
        assert await wait.next(replies) == "180"
        later = asyncio.get_running_loop().call_later(0.01, caller.ended.set)
        assert await wait.next(replies) is Interrupted.CALLER_LEFT
        later.cancel()
        # A reply that is already there when the caller has gone is still taken.
        replies.put_nowait("200")
        assert await wait.next(replies) == "200"


async def test_the_deadline_is_one_for_the_whole_wait() -> None:
    replies: asyncio.Queue[str] = asyncio.Queue()
    async with ReplyWait(Caller(), 0.05) as wait:  # type: ignore[arg-type]
        assert await wait.next(replies) is Interrupted.TIME_UP
        replies.put_nowait("486")
        assert await wait.next(replies) == "486"
        assert await wait.next(replies) is Interrupted.TIME_UP


def test_a_leg_finishes_with_the_status_its_sip_code_means() -> None:
    leg = TransferLeg(target="sip:bob@example.com", uri="sip:bob@example.com", status="unreachable")
    assert leg.finish(status_for(486), 486) is leg
    assert (leg.status, leg.sip_code, leg.ended_by) == ("busy", 486, "")
    assert leg.ended_at is not None and leg.answered_at is None
    assert [status_for(c) for c in (600, 408, 480, 487, 403, 503)] == [
        "busy",
        "no_answer",
        "no_answer",
        "no_answer",
        "rejected",
        "rejected",
    ]
    leg = TransferLeg(target="user:1", uri="sip:1@example.com", status="unreachable")
    leg.answered(200)
    leg.hung_up("target")
    assert (leg.status, leg.sip_code, leg.ended_by) == ("answered", 200, "target")
    assert leg.to_dict()["ended_by"] == "target"
