"""Small reads that must be fresh on every node, as cheap as the database allows.

Some reads can never be cached because another node may have changed the answer a moment ago:
a token user's standing on every API request (store/standing.py), the configuration revision
and mailbox counts a call checks its account's snapshot with (store/snapshot.py). They are
small indexed reads made very often, so on SQLite they run on a plain `sqlite3` connection in
the event loop's own thread: a WAL reader never waits for writers, and one indexed read takes
microseconds, less than handing it to aiosqlite's thread and back (five hops for one ORM
query). On PostgreSQL they run as prepared statements on a small asyncpg pool of their own,
without the ORM engine's per-checkout ping. Other databases (and SQLite when the inline read
cannot go ahead, e.g. a busy file) use the engine.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Mapping
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

_NAMED = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")  # :name, not a cast (::int)


class FreshReader:
    """One row of a small query, read fresh; see the module docstring for how."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite: sqlite3.Connection | None = None
        self._pg: asyncpg.Pool | None = None
        self._pg_lock = asyncio.Lock()
        self._pg_sql: dict[str, tuple[str, tuple[str, ...]]] = {}
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            # Autocommit (isolation_level=None) and fetchall(): no read transaction stays open
            # to hold back WAL checkpoints. No busy timeout: SQLite's busy handler sleeps, and
            # here it would sleep on the loop every call's audio runs on; busy → fall back.
            self._sqlite = sqlite3.connect(
                url.database, isolation_level=None, check_same_thread=False, timeout=0
            )
            self._sqlite.execute("PRAGMA query_only=ON")

    async def first(self, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row of `sql` (named parameters, `:name`), or None when there is none."""
        if self._sqlite is not None:
            try:
                rows = self._sqlite.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:  # busy or locked: the async path waits
                log.debug("inline read fell back: %s", exc)
            else:
                return tuple(rows[0]) if rows else None
        if self._engine.url.get_backend_name() == "postgresql":
            numbered, names = self._numbered(sql)
            pool = self._pg or await self._open_pg()
            async with pool.acquire() as conn:
                record = await conn.fetchrow(numbered, *(params[n] for n in names))
            return tuple(record) if record is not None else None
        async with self._engine.connect() as conn:
            row = (await conn.execute(text(sql), dict(params))).first()
        return tuple(row) if row is not None else None

    def _numbered(self, sql: str) -> tuple[str, tuple[str, ...]]:
        """asyncpg's $1, $2… for the named parameters, in order (one $n per name)."""
        known = self._pg_sql.get(sql)
        if known is None:
            names: list[str] = []

            def number(match: re.Match[str]) -> str:
                if match[1] not in names:
                    names.append(match[1])
                return f"${names.index(match[1]) + 1}"

            known = self._pg_sql[sql] = (_NAMED.sub(number, sql), tuple(names))
        return known

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
