"""A token user's standing, read fresh from the database for every request in one query.

Every authenticated request must see a revoked token as revoked and its account's latest
configuration, on whichever node it lands, so this read is never cached. It is the hottest
query of the API, so on SQLite it runs on a plain `sqlite3` connection in the event loop's own
thread: a WAL reader never waits for writers, and one indexed read takes microseconds, less
than handing it to aiosqlite's thread and back. On PostgreSQL it runs as a prepared statement
on a small asyncpg pool of its own, without the ORM engine's per-checkout ping. Other
databases (and SQLite when the inline read cannot go ahead, e.g. a busy file) use the engine.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

# One query for every path: sqlite3 and SQLAlchemy take the named parameter, asyncpg $1.
_SQL = (
    "SELECT u.account_id, u.token_generation, u.user_type, a.config_revision "
    "FROM user_ AS u JOIN account AS a ON a.account_id = u.account_id WHERE u.user_id = :user_id"
)
_PG_SQL = _SQL.replace(":user_id", "$1")


@dataclass(frozen=True, slots=True)
class Standing:
    """A user's account, token generation and role, and that account's config revision."""

    account_id: str
    token_generation: int
    user_type: str
    config_revision: int


class StandingReader:
    """Reads a user's standing; see the module docstring for why SQLite reads inline."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite: sqlite3.Connection | None = None
        self._pg: asyncpg.Pool | None = None
        self._pg_lock = asyncio.Lock()
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            # Autocommit (isolation_level=None) and fetchall(): no read transaction stays open
            # to hold back WAL checkpoints. No busy timeout: SQLite's busy handler sleeps, and
            # here it would sleep on the loop every call's audio runs on; busy → fall back.
            self._sqlite = sqlite3.connect(
                url.database, isolation_level=None, check_same_thread=False, timeout=0
            )
            self._sqlite.execute("PRAGMA query_only=ON")

    async def read(self, user_id: str) -> Standing | None:
        """The user's standing, or None when the user no longer exists."""
        if self._sqlite is not None:
            try:
                rows = self._sqlite.execute(_SQL, {"user_id": user_id}).fetchall()
            except sqlite3.OperationalError as exc:  # busy or locked: the async path waits
                log.debug("inline standing read fell back: %s", exc)
            else:
                return Standing(*rows[0]) if rows else None
        if self._engine.url.get_backend_name() == "postgresql":
            pool = self._pg or await self._open_pg()
            async with pool.acquire() as conn:
                record = await conn.fetchrow(_PG_SQL, user_id)
            return Standing(*record) if record is not None else None
        async with self._engine.connect() as conn:
            row = (await conn.execute(text(_SQL), {"user_id": user_id})).first()
        return Standing(*row) if row is not None else None

    async def _open_pg(self) -> asyncpg.Pool:
        async with self._pg_lock:
            if self._pg is None:
                url = self._engine.url.set(drivername="postgresql")
                self._pg = await asyncpg.create_pool(
                    url.render_as_string(hide_password=False), min_size=1, max_size=8
                )
            return self._pg

    async def close(self) -> None:
        """Close the connections of this reader."""
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        if self._pg is not None:
            await self._pg.close()
            self._pg = None
