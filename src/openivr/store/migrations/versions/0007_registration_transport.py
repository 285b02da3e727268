"""Registrations remember the transport their REGISTER came over (UDP or TCP).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sip_registration") as batch:
        batch.add_column(sa.Column("transport", sa.String(8), nullable=False, server_default="UDP"))


def downgrade() -> None:
    with op.batch_alter_table("sip_registration") as batch:
        batch.drop_column("transport")
