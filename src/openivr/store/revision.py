"""Every change to an account's apps, users, prompts, teams, schedules or phone numbers bumps the
account's config revision.

A session event sees every ORM insert, update and delete of those objects and bumps the
revision in the same transaction; writers that use Core UPDATEs call `bump()` themselves.
A node may then reuse what it loaded for an account while the revision stays the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, update
from sqlalchemy.orm import Session

from openivr.store.models import Account, PhoneNumber, Prompt, Schedule, Team, User, VoiceApp

# Phone numbers too: where a number leads is reused by calls while the revision holds
# (calls/router.py `Routes`).
_CONFIG = (VoiceApp, User, Prompt, Team, Schedule, PhoneNumber)


def bump_statement(account_ids: Iterable[str]) -> Any:
    """The UPDATE that marks accounts' configuration as changed."""
    return (
        update(Account)
        .where(Account.account_id.in_(sorted(set(account_ids))))
        .values(config_revision=Account.config_revision + 1)
        .execution_options(synchronize_session=False)
    )


@event.listens_for(Session, "before_flush")
def _bump_on_flush(session: Session, _context: Any, _instances: Any) -> None:
    changed = {
        obj.account_id
        for obj in (*session.new, *session.dirty, *session.deleted)
        if isinstance(obj, _CONFIG)
        and (obj in session.new or obj in session.deleted or session.is_modified(obj))
    }
    if changed:
        session.execute(bump_statement(changed))
