"""Alembic environment: runs on the connection OpenIVR hands it."""

from __future__ import annotations

from alembic import context

from openivr.store.models import Base

connection = context.config.attributes.get("connection")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
