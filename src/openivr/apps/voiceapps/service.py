"""Voice apps of one account: list, read, create, change (compare-and-swap), delete.

A change is validate -> store -> bump the account's revision in one transaction, as an
UPDATE ... WHERE version = the version it was computed from, so writers never overwrite each
other's fields. Writers of one app on this node take turns (a lock per app); other nodes
queue on the row lock on PostgreSQL, and on SQLite, which has no row locks, a lost race
retries.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openivr.apps.validation import FieldError, Refusal, known_fields
from openivr.apps.voiceapps import schema as va
from openivr.delivery import webhook
from openivr.engine.vocabulary import APP_TYPES, RECORDING_SHORTCODE
from openivr.store.models import Prompt, VoiceApp
from openivr.store.references import release
from openivr.store.versioned import ATTEMPTS, etag, if_match_holds, swap
from openivr.store.voiceapps import account_apps, account_refs, create_app

_writers: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def writer_lock(app_id: str) -> asyncio.Lock:
    """Writers of one app on this node take turns; other nodes wait on the row lock."""
    lock = _writers.get(app_id)
    if lock is None:
        lock = _writers[app_id] = asyncio.Lock()
    return lock


def app_etag(app: VoiceApp) -> str:
    """The entity tag of an app's current version."""
    return etag(app.version)


async def load_app(
    db: AsyncSession, account_id: str, app_id: str, *, for_update: bool = False
) -> VoiceApp:
    """An app of the account, or Refusal not_found; `for_update` locks its row (PostgreSQL)
    until commit."""
    if for_update:
        app = await db.scalar(
            select(VoiceApp)
            .where(VoiceApp.app_id == app_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    else:
        app = await db.get(VoiceApp, app_id)
    if app is None or app.account_id != account_id:
        raise Refusal("not_found", f"no voice app {app_id!r} in this account")
    return app


class VoiceAppService:
    """The voice apps of one account, through one database session."""

    def __init__(
        self,
        db: AsyncSession,
        account_id: str,
        view: Callable[[VoiceApp], dict[str, Any]],
        *,
        allow_private_webhooks: bool = False,
    ):
        self.db = db
        self.account_id = account_id
        # How the API shows an app: a PUT may send back what a GET showed, unchanged.
        self.view = view
        self.allow_private_webhooks = allow_private_webhooks

    async def all(self) -> Sequence[VoiceApp]:
        """Every app of the account, oldest first."""
        return await account_apps(self.db, self.account_id)

    async def one(self, app_id: str, *, for_update: bool = False) -> VoiceApp:
        """An app of the account, or Refusal not_found; `for_update` locks its row."""
        return await load_app(self.db, self.account_id, app_id, for_update=for_update)

    async def _check_webhook(self, data: dict[str, Any]) -> None:
        """Refuse a webhook_url this node may not post to (see delivery/webhook.py)."""
        url = data.get("webhook_url")
        if isinstance(url, str) and url.strip():
            refusal = await webhook.target_refusal(url.strip(), self.allow_private_webhooks)
            if refusal is not None:
                raise FieldError(
                    "webhook_url",
                    f"{refusal}; a node started with --allow-private-webhooks takes it",
                )

    async def create(self, data: dict[str, Any]) -> VoiceApp:
        """A new app from a create body (app_type and name required), with its standard
        prompts."""
        app_type = data.get("app_type")
        if not app_type:
            raise Refusal("missing_field", "app_type: is required (ivr, mailbox or sysprompt)")
        if app_type not in APP_TYPES:
            raise FieldError("app_type", f"must be one of {', '.join(APP_TYPES)}; got {app_type!r}")
        if "name" not in data:
            raise Refusal("missing_field", "name: is required")
        if data.get("shortcode") == RECORDING_SHORTCODE:
            raise FieldError(
                "shortcode", f"{RECORDING_SHORTCODE} is kept for recording prompts by phone"
            )
        data = known_fields(data, va.writable_fields(app_type), va.READ_ONLY)
        await self._check_webhook(data)
        if app_type == "sysprompt":
            existing = [a for a in await self.all() if a.app_type == "sysprompt"]
            if existing:
                raise Refusal(
                    "duplicate",
                    f"app_type: the account already has sysprompt app {existing[0].app_id}",
                )
        refs = await account_refs(self.db, self.account_id)
        name, cfg = va.build_config(app_type, data, refs)
        app = await create_app(self.db, self.account_id, app_type, name or "", cfg)
        await self.db.commit()
        return app

    async def change(self, app_id: str, body: dict[str, Any], if_match: str | None) -> VoiceApp:
        """Apply the fields a PUT carries; others keep their values. app_type cannot change;
        412 when If-Match is stale."""
        async with writer_lock(app_id):
            await self._check_webhook(body)
            await self._swap(app_id, body, if_match)
        self.db.expunge_all()
        return await self.one(app_id)

    async def _swap(self, app_id: str, body: dict[str, Any], if_match: str | None) -> None:
        for attempt in range(ATTEMPTS):
            app = await self.one(app_id, for_update=True)
            if if_match is not None and not if_match_holds(if_match, app.version):
                raise Refusal(
                    "precondition_failed",
                    f"If-Match {if_match} is stale; current ETag is {app_etag(app)}",
                )
            name, cfg = await self.proposed(app, body)
            values = {"config": cfg, "name": name if name is not None else app.name}
            if await swap(
                self.db, VoiceApp, VoiceApp.app_id == app_id, self.account_id, app.version, values
            ):
                await self.db.commit()
                return
            await self.db.rollback()
            if if_match is not None:
                raise Refusal(
                    "precondition_failed", "the app changed while this request was applied"
                )
            self.db.expunge_all()
            await asyncio.sleep(random.uniform(0.001, 0.005) * (attempt + 1))
        raise Refusal("precondition_failed", "the app is changing too often; retry")

    async def proposed(
        self, app: VoiceApp, body: dict[str, Any]
    ) -> tuple[str | None, dict[str, Any]]:
        """What a PUT of `body` makes of the app, refused as the PUT would be: (its new name or
        None, its whole config). app_type cannot change; unknown fields are refused, what a GET
        shows (settings of older versions included) is accepted back unchanged."""
        if body.get("app_type") not in (None, app.app_type):
            raise Refusal("immutable_field", f"app_type: is {app.app_type} and cannot change")
        shown = (*va.READ_ONLY, *app.config)
        data = known_fields(body, va.writable_fields(app.app_type), shown, self.view(app))
        refs = await account_refs(self.db, self.account_id)
        return va.build_config(app.app_type, data, refs, current=app.config, app_id=app.app_id)

    async def remove(self, app_id: str, *, force: bool) -> VoiceApp:
        """Delete an app for good; in_use while menus or numbers point at it or play its
        prompts, unless force. The sysprompt app cannot go."""
        app = await self.one(app_id)
        if app.app_type == "sysprompt":
            raise Refusal(
                "required",
                "the sysprompt app speaks the account's system messages; it cannot be deleted",
            )
        prompt_ids = (
            await self.db.scalars(select(Prompt.prompt_id).where(Prompt.app_id == app_id))
        ).all()
        # Its own menus playing its own prompts go with it.
        await release(
            self.db,
            self.account_id,
            [("app", app_id), *(("prompt", pid) for pid in prompt_ids)],
            force=force,
            in_use="the app is still used by",
            owner=app_id,
        )
        await self.db.delete(app)
        await self.db.commit()
        return app
