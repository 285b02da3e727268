"""Rows changed by compare-and-swap on a version column: ETags, If-Match, no lost updates.

Writers never overwrite each other's fields: each change is an UPDATE ... WHERE version = the
version it was computed from, and the account's config revision is bumped in the same
transaction (a Core UPDATE does not pass the session's before_flush hook).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.store.models import utcnow
from openivr.store.revision import bump_statement

# Attempts a change makes when other writers keep winning the race (without If-Match).
ATTEMPTS = 20


def etag(version: int) -> str:
    """The entity tag of a row's version."""
    return f'"{version}"'


def if_match_holds(if_match: str, version: int) -> bool:
    """Whether an If-Match header names this version (or '*')."""
    tags = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
    return "*" in tags or etag(version) in tags


async def swap(
    db: AsyncSession,
    model: Any,
    key: Any,
    account_id: str,
    version: int,
    values: dict[str, Any],
) -> bool:
    """Write `values` if the row is still at `version` (then bump it and the account's
    revision, uncommitted); False when another writer got there first."""
    result = await db.execute(
        update(model)
        .where(key, model.version == version)
        .values(**values, version=version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    await db.execute(bump_statement([account_id]))
    return True
