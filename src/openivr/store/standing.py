"""A token user's standing, read fresh from the database for every request in one query.

Every authenticated request must see a revoked token as revoked and its account's latest
configuration, on whichever node it lands, so this read is never cached. It is the hottest
query of the API, so it is a fresh read (store/fresh.py: inline on SQLite, a prepared
statement on PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass

from openivr.store.fresh import FreshReader

_SQL = (
    "SELECT u.account_id, u.token_generation, u.user_type, a.config_revision "
    "FROM user_ AS u JOIN account AS a ON a.account_id = u.account_id WHERE u.user_id = :user_id"
)


@dataclass(frozen=True, slots=True)
class Standing:
    """A user's account, token generation and role, and that account's config revision."""

    account_id: str
    token_generation: int
    user_type: str
    config_revision: int


class StandingReader(FreshReader):
    """Reads a user's standing (and, being a FreshReader, the node's other fresh reads)."""

    async def read(self, user_id: str) -> Standing | None:
        """The user's standing, or None when the user no longer exists."""
        row = await self.first(_SQL, {"user_id": user_id})
        return Standing(*row) if row is not None else None
