"""Which calls are recorded, and what a recording leaves: its row, its file, how it ended.

The account's `call_recording` decides: `off`; `all`; `inbound` (calls the node answers);
`outbound` (calls the node places for the account, such as callbacks); `selected` (a call to a
phone number, or from or answered by a user, whose `record_calls` is `yes`).

A recorded call is recorded on its recorded party's leg from its first packet (the caller's, as
soon as it is answered) until it ends: what they say (to the menu too) and everything they
hear (prompts, ringback, the person a transfer or team call reached) as one file. With
`selected`, a call that becomes recorded only when a selected user answers is recorded from
that moment. The row is written when the recording starts (`recording`), and completed when
it ends (`complete`, or `failed` with the reason); a node that was killed closes what it left
as `interrupted` at its next start, keeping the audio written up to then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import FastAPI
from sqlalchemy import or_, select

from openivr.audio.wavstream import repair
from openivr.context import ServerContext
from openivr.settings import Settings
from openivr.sip.media import RtpSession
from openivr.sip.recording import CallRecording, Recorder
from openivr.store import ids
from openivr.store import recordings as store
from openivr.store.models import Account, PhoneNumber, User

log = logging.getLogger(__name__)

CHANNELS = {"mono": 1, "stereo": 2}
SWEEP_SECONDS = 3600.0
Direction = Literal["inbound", "outbound"]


def channels_of(settings: Settings) -> int:
    """1 or 2 from --recording-channels (ValueError naming the setting otherwise)."""
    try:
        return CHANNELS[settings.recording_channels]
    except KeyError:
        raise ValueError(
            f"--recording-channels: must be mono or stereo, got {settings.recording_channels!r}"
        ) from None


def check(settings: Settings) -> None:
    """Refuse recording settings the node could not run with."""
    channels_of(settings)
    if not settings.recording_days > 0:
        raise ValueError(f"--recording-days: must be more than 0, got {settings.recording_days}")


@dataclass
class _Live:
    """A recording in progress and the row it will complete."""

    recording: CallRecording
    row: dict[str, Any]
    task: asyncio.Task[None] | None = None
    users: list[str] = field(default_factory=list)


class CallRecordings:
    """A node's call recordings: deciding, starting, finishing, recovering."""

    def __init__(self, ctx: ServerContext, node: str, recorder: Recorder | None = None) -> None:
        self.ctx = ctx
        self.node = node
        self.root = ctx.settings.recordings_dir
        self.channels = channels_of(ctx.settings)
        self.recorder = recorder or Recorder()
        self.live: dict[RtpSession, _Live] = {}  # the recorded party's leg -> its recording

    async def wanted(
        self,
        account: Account | None,
        direction: Direction,
        *,
        number: str = "",
        users: tuple[str, ...] = (),
    ) -> bool:
        """Whether the account records this call: by its mode, or with `selected` by the
        number dialled or a user taking part (by user id or their own number)."""
        mode = account.call_recording if account is not None else "off"
        if mode in ("all", direction):
            return True
        if mode != "selected" or account is None:
            return False
        async with self.ctx.sessions() as db:
            if number:
                marked = await db.scalar(
                    select(PhoneNumber.record_calls).where(
                        PhoneNumber.phnum == number, PhoneNumber.account_id == account.account_id
                    )
                )
                if marked == "yes":
                    return True
            wanted = [u for u in users if u]
            if wanted:
                found = await db.scalar(
                    select(User.user_id)
                    .where(
                        User.account_id == account.account_id,
                        User.record_calls == "yes",
                        or_(User.user_id.in_(wanted), User.phnum.in_(wanted)),
                    )
                    .limit(1)
                )
                return found is not None
        return False

    def record(
        self,
        session: RtpSession,
        *,
        call_id: str,
        account_id: str,
        until: Awaitable[object],
        user_id: str | None = None,
    ) -> str:
        """Record `session` (the recorded party's leg) until `until` completes; the recording
        id. A call already recorded keeps its recording."""
        live = self.live.get(session)
        if live is not None:
            return str(live.row["recording_id"])
        recording_id = ids.call_recording_id()
        key = store.file_key(account_id, recording_id)
        row: dict[str, Any] = {
            "recording_id": recording_id,
            "account_id": account_id,
            "call_id": call_id,
            "user_id": user_id,
            "node": self.node,
            "status": "recording",
            "failure": "",
            "codec": session.codec,
            "channels": self.channels,
            "file_key": key,
            "size_bytes": 0,
            "seconds": 0.0,
            "created_at": datetime.now(UTC),
            "ended_at": None,
        }
        sidecar = store.sidecar_path(self.root, recording_id)
        recording = self.recorder.start(
            session,
            recording_id,
            self.root / key,
            channels=self.channels,
            sidecar=(sidecar, store.sidecar_bytes(row)),
        )
        live = _Live(recording, row)
        self.live[session] = live
        live.task = asyncio.get_running_loop().create_task(self._follow(session, live, until))
        log.info("call %s is recorded (%s)", call_id, recording_id, extra={"call_id": call_id})
        return recording_id

    def answered_by(self, session: RtpSession, user_id: str) -> None:
        """A user took the call recorded on `session`: the recording is theirs (the last one to
        answer)."""
        live = self.live.get(session)
        if live is not None and user_id:
            live.row["user_id"] = user_id

    async def _follow(self, session: RtpSession, live: _Live, until: Awaitable[object]) -> None:
        row = dict(live.row)
        inserted = False
        try:
            async with self.ctx.sessions() as db:
                await store.insert_row(db, row)
                await db.commit()
            inserted = True
        except Exception:  # the end writes the whole row instead
            log.exception("recording %s: could not store its row yet", row["recording_id"])
        try:
            await until
        finally:
            result = await self.recorder.finish(live.recording)
            del self.live[session]
            row = live.row | {
                "status": result.status,
                "failure": result.failure,
                "size_bytes": result.size,
                "seconds": round(result.seconds, 3),
                "ended_at": datetime.now(UTC),
            }
            # A row stored at the start and gone now was deleted meanwhile: it stays deleted.
            await self._store_end(row, insert_missing=not inserted)

    async def _store_end(self, row: dict[str, Any], insert_missing: bool = True) -> None:
        try:
            async with self.ctx.sessions() as db:
                kept = await store.finish_row(db, row, insert_missing)
                await db.commit()
        except Exception:  # the sidecar stays: the next start stores it
            log.exception("recording %s: could not store how it ended", row["recording_id"])
            return
        if not kept and row.get("file_key"):  # deleted during the call: what was written
            await asyncio.to_thread(store.unlink, self.root / str(row["file_key"]))  # goes too
        sidecar = store.sidecar_path(self.root, str(row["recording_id"]))
        await asyncio.to_thread(store.forget, sidecar)

    async def recover(self) -> int:
        """At start-up: recordings this node was writing when it stopped are closed as
        `interrupted`, their WAV headers fixed to what was written; how many."""
        found = await asyncio.to_thread(store.open_sidecars, self.root, self.node)
        for sidecar, data in found:
            row = store.row_from_sidecar(data)
            path = self.root / str(row.get("file_key", ""))
            try:
                size, seconds = await asyncio.to_thread(repair, path)
                row.update(
                    status="interrupted",
                    failure="the node stopped during the call; the audio up to then is kept",
                )
            except OSError as exc:
                size, seconds = 0, 0.0
                row.update(status="failed", failure=f"the node stopped during the call: {exc}")
            row.update(size_bytes=size, seconds=round(seconds, 3), ended_at=datetime.now(UTC))
            await self._store_end(row)
            await asyncio.to_thread(store.forget, sidecar)
        if found:
            log.warning(
                "%d call recordings were being written when this node last stopped: kept as "
                "interrupted",
                len(found),
            )
        return len(found)

    async def finish_all(self, timeout: float = 15.0) -> None:
        """Wait (at most `timeout`) for the recordings of ending calls to be stored."""
        tasks = [live.task for live in self.live.values() if live.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        self.recorder.close()


async def _sweep_forever(ctx: ServerContext) -> None:
    settings = ctx.settings
    # Often enough that a short retention (tests, small disks) is kept to within a tenth.
    period = min(SWEEP_SECONDS, max(1.0, settings.recording_days * 86400 / 10))
    while True:
        try:
            gone = await store.sweep(ctx.sessions, settings.recordings_dir, settings.recording_days)
            if gone:
                log.info(
                    "removed %d call recordings older than %g days", gone, settings.recording_days
                )
        except Exception:  # the database may be briefly away; try again next time
            log.exception("removing old call recordings failed")
        await asyncio.sleep(period)


async def install_retention(_app: FastAPI, ctx: ServerContext, stack: AsyncExitStack) -> None:
    """Delete recordings past --recording-days, now and then (safe on several nodes at once)."""
    task = asyncio.get_running_loop().create_task(_sweep_forever(ctx))
    stack.callback(task.cancel)
