"""Call recordings at rest: their rows, their files under the recordings dir, retention.

A recording's WAV is `<recordings>/<account_id>/<recording_id>.wav`. While it is being written
a sidecar `<recordings>/open/<recording_id>.json` names it and the node writing it, so a node
that was killed finds, at its next start, what it left half-written (`open_sidecars`).

Deleting is safe with several nodes on one database: a row is deleted by one conditional
DELETE, and only the node whose DELETE removed it removes the file; files a crash left without
a row are removed by the retention sweep once older than the retention (by mtime, which is
never older than the row's creation).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openivr.store.models import CallRecordingRow

log = logging.getLogger(__name__)

# Which calls an account records (its `call_recording`); `selected`: numbers and users whose
# `record_calls` is yes.
RECORDING_MODES = ("off", "all", "inbound", "outbound", "selected")
OPEN_DIR = "open"
SWEEP_BATCH = 500
_TABLE: Any = CallRecordingRow.__table__


def file_key(account_id: str, recording_id: str) -> str:
    """Where a recording's WAV lives, under the recordings dir."""
    return f"{account_id}/{recording_id}.wav"


def sidecar_path(root: Path, recording_id: str) -> Path:
    """The file saying a recording is being written (and by which node)."""
    return root / OPEN_DIR / f"{recording_id}.json"


def sidecar_bytes(row: dict[str, Any]) -> bytes:
    """A row, as the sidecar keeps it (dates as ISO text)."""
    plain = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
    return json.dumps(plain, sort_keys=True).encode()


def open_sidecars(root: Path, node: str) -> list[tuple[Path, dict[str, Any]]]:
    """The sidecars `node` left (recordings it was writing when it stopped)."""
    found: list[tuple[Path, dict[str, Any]]] = []
    try:
        entries = list(os.scandir(root / OPEN_DIR))
    except FileNotFoundError:
        return found
    except OSError as exc:  # a broken store must not keep the node from starting
        log.error("cannot look for unfinished call recordings in %s: %s", root, exc)
        return found
    for entry in entries:
        if not entry.name.endswith(".json"):
            continue
        path = Path(entry.path)
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            log.warning("recording sidecar %s unreadable: %s", path.name, exc)
            continue
        if isinstance(data, dict) and data.get("node") == node:
            found.append((path, data))
    return found


def forget(sidecar: Path) -> None:
    """Remove a sidecar once its recording's row says how it ended."""
    try:
        sidecar.unlink(missing_ok=True)
    except OSError as exc:  # never written (a broken store), or the store is gone
        log.debug("recording sidecar %s not removed: %s", sidecar, exc)


def row_from_sidecar(data: dict[str, Any]) -> dict[str, Any]:
    """The row a sidecar describes (dates parsed back)."""
    row = {k: data[k] for k in data if k in _TABLE.c}
    for name in ("created_at", "ended_at"):
        if isinstance(row.get(name), str):
            row[name] = datetime.fromisoformat(row[name])
    return row


async def insert_row(db: AsyncSession, row: dict[str, Any]) -> None:
    """Store a new recording's row."""
    await db.execute(insert(_TABLE), [row])


async def finish_row(db: AsyncSession, row: dict[str, Any], insert_missing: bool = True) -> bool:
    """Complete a recording's row with how it ended (inserting it when its start was lost and
    `insert_missing`); False when the row is gone and was not inserted again (deleted
    meanwhile)."""
    values = {k: v for k, v in row.items() if k != "recording_id"}
    result = await db.execute(
        update(_TABLE).where(_TABLE.c.recording_id == row["recording_id"]).values(values)
    )
    if getattr(result, "rowcount", 0):
        return True
    if insert_missing:
        await db.execute(insert(_TABLE), [row])
        return True
    return False


@dataclass(frozen=True)
class RecordingFilter:
    """Which recordings of an account a list shows."""

    user_id: str = ""
    since: datetime | None = None
    until: datetime | None = None


async def list_rows(
    db: AsyncSession, account_id: str, which: RecordingFilter, limit: int, offset: int
) -> list[CallRecordingRow]:
    """An account's recordings, newest first."""
    query = select(CallRecordingRow).where(CallRecordingRow.account_id == account_id)
    if which.user_id:
        query = query.where(CallRecordingRow.user_id == which.user_id)
    if which.since is not None:
        query = query.where(CallRecordingRow.created_at >= which.since)
    if which.until is not None:
        query = query.where(CallRecordingRow.created_at <= which.until)
    query = query.order_by(CallRecordingRow.created_at.desc(), CallRecordingRow.recording_id.desc())
    return list((await db.scalars(query.limit(limit).offset(offset))).all())


async def remove(db: AsyncSession, root: Path, row: CallRecordingRow) -> bool:
    """Delete a recording, row then file; False when another request or node got there
    first (it removes the file)."""
    result = await db.execute(delete(_TABLE).where(_TABLE.c.recording_id == row.recording_id))
    await db.commit()
    if not getattr(result, "rowcount", 0):
        return False
    await asyncio.to_thread(unlink, root / row.file_key)
    return True


def unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # left for the retention sweep's file pass
        log.warning("could not remove recording file %s: %s", path, exc)


async def sweep(
    sessions: async_sessionmaker[AsyncSession],
    root: Path,
    days: float,
    now: datetime | None = None,
) -> int:
    """Delete recordings older than `days`, rows and files; how many rows this node deleted."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    gone = 0
    while True:
        async with sessions() as db:
            rows = (
                await db.execute(
                    select(_TABLE.c.recording_id, _TABLE.c.file_key)
                    .where(_TABLE.c.created_at < cutoff)
                    .limit(SWEEP_BATCH)
                )
            ).all()
            won: list[str] = []
            for recording_id, key in rows:
                result = await db.execute(
                    delete(_TABLE).where(_TABLE.c.recording_id == recording_id)
                )
                if getattr(result, "rowcount", 0):
                    won.append(str(key))
            await db.commit()
        for key in won:
            await asyncio.to_thread(unlink, root / key)
        gone += len(won)
        if len(rows) < SWEEP_BATCH:
            break
    await asyncio.to_thread(_remove_old_files, root, cutoff.timestamp())
    return gone


def _remove_old_files(root: Path, cutoff: float) -> None:
    """Recording files last written before `cutoff` (a crash left them without a row)."""
    try:
        accounts = [e for e in os.scandir(root) if e.is_dir() and e.name != OPEN_DIR]
    except OSError:  # no recordings yet, or a store that is not there (logged by the calls)
        return
    for account in accounts:
        for entry in os.scandir(account.path):
            try:
                if entry.name.endswith(".wav") and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                continue
