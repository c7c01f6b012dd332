"""SIEM export: one cursor row per configured output (``export_cursors``).

Revision ID: 0013_siem_export
Revises: 0012_clerk_document_checks
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.tables import UTCDateTime

revision = "0013_siem_export"
down_revision = "0012_clerk_document_checks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("event_cursor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("alert_cursor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("sent", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("failed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_sent_at", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("last_error_at", UTCDateTime, nullable=True),
        sa.Column("lagging_since", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_export_cursors")),
    )


def downgrade() -> None:
    op.drop_table("export_cursors")
