"""The patrol of published documents: what it last saw of each document (``patrol_documents``).

Revision ID: 0011_document_patrol
Revises: 0010_sm2_policy_keys
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.tables import UTCDateTime

revision = "0011_document_patrol"
down_revision = "0010_sm2_policy_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patrol_documents",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("etag", sa.String(length=512), nullable=True),
        sa.Column("last_modified", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("verdict", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("event_id", sa.String(length=36), nullable=True),
        sa.Column("checked_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("source", "key_sha256", name="pk_patrol_documents"),
    )


def downgrade() -> None:
    op.drop_table("patrol_documents")
