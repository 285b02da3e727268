"""Initial schema: accounts, users, tokens, voice apps, prompts, phone numbers.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "account",
        sa.Column("account_id", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=20), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("caller_id_mode", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "phonenumber",
        sa.Column("phnum", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=20), nullable=False),
        sa.Column("connect_to_type", sa.String(length=20), nullable=False),
        sa.Column("connect_to", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.account_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("phnum"),
    )
    with op.batch_alter_table("phonenumber", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_phonenumber_account_id"), ["account_id"], unique=False)

    op.create_table(
        "user_",
        sa.Column("user_id", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("fname", sa.String(length=100), nullable=False),
        sa.Column("lname", sa.String(length=100), nullable=False),
        sa.Column("user_type", sa.String(length=20), nullable=False),
        sa.Column("extension", sa.String(length=10), nullable=False),
        sa.Column("phnum", sa.String(length=20), nullable=False),
        sa.Column("sip_uri", sa.String(length=300), nullable=False),
        sa.Column("sip_password", sa.Text(), nullable=False),
        sa.Column("token_generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.account_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
        sa.UniqueConstraint("account_id", "extension", name="uq_user_extension"),
        sa.UniqueConstraint("email"),
    )
    with op.batch_alter_table("user_", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user__account_id"), ["account_id"], unique=False)

    op.create_table(
        "voiceapp",
        sa.Column("app_id", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=20), nullable=False),
        sa.Column("app_type", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("shortcode", sa.String(length=20), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.account_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id"),
        sa.UniqueConstraint("account_id", "shortcode", name="uq_voiceapp_shortcode"),
    )
    with op.batch_alter_table("voiceapp", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_voiceapp_account_id"), ["account_id"], unique=False)

    op.create_table(
        "prompt",
        sa.Column("prompt_id", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=20), nullable=False),
        sa.Column("app_id", sa.String(length=20), nullable=False),
        sa.Column("prompt_type", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("message_key", sa.String(length=200), nullable=False),
        sa.Column("message_source", sa.String(length=20), nullable=False),
        sa.Column("message_text", sa.Text(), nullable=False),
        sa.Column("message_voice", sa.String(length=20), nullable=False),
        sa.Column("file_name", sa.String(length=300), nullable=False),
        sa.Column("audio_length", sa.Float(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("message_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.account_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["app_id"], ["voiceapp.app_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("prompt_id"),
    )
    with op.batch_alter_table("prompt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prompt_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_prompt_app_id"), ["app_id"], unique=False)

    op.create_table(
        "refresh_token",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=20), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user_.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("jti"),
    )
    with op.batch_alter_table("refresh_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refresh_token_user_id"), ["user_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("refresh_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_token_user_id"))

    op.drop_table("refresh_token")
    with op.batch_alter_table("prompt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prompt_app_id"))
        batch_op.drop_index(batch_op.f("ix_prompt_account_id"))

    op.drop_table("prompt")
    with op.batch_alter_table("voiceapp", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_voiceapp_account_id"))

    op.drop_table("voiceapp")
    with op.batch_alter_table("user_", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user__account_id"))

    op.drop_table("user_")
    with op.batch_alter_table("phonenumber", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phonenumber_account_id"))

    op.drop_table("phonenumber")
    op.drop_table("account")
