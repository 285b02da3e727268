"""Answers the API rendered once and reused while their account's config revision holds.

The revision is read with every request's token check (store/standing.py) and is bumped in
the same transaction as every configuration change, on any node; an entry made at an older
revision is never served, so a cached answer is never staler than a database read.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


def render_json(payload: Any) -> bytes:
    """JSON exactly as the API's JSON responses render it."""
    return json.dumps(
        payload, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


@dataclass(frozen=True, slots=True)
class RenderedView:
    """One resource as the API shows it, and that view as JSON."""

    account_id: str
    revision: int
    view: dict[str, Any]
    body: bytes
    etag: str


class ViewCache:
    """The most recently read views by resource id, least recently used dropped first."""

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._views: OrderedDict[str, RenderedView] = OrderedDict()

    def get(self, key: str, account_id: str, revision: int) -> RenderedView | None:
        """The view of `key` rendered at exactly this revision of this account, if kept."""
        found = self._views.get(key)
        if found is None or found.revision != revision or found.account_id != account_id:
            return None
        self._views.move_to_end(key)
        return found

    def put(
        self, key: str, account_id: str, revision: int, view: dict[str, Any], etag: str
    ) -> RenderedView:
        """Keep a view read at (or after) `revision`; returns it rendered."""
        rendered = RenderedView(account_id, revision, view, render_json(view), etag)
        self._views[key] = rendered
        self._views.move_to_end(key)
        while len(self._views) > self._limit:
            self._views.popitem(last=False)
        return rendered
