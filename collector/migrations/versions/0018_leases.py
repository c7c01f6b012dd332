"""One lease table for every singleton; the router's and the exports' own lease columns go.

Revision ID: 0018_leases
Revises: 0017_console_speed
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.tables import UTCDateTime

revision = "0018_leases"
down_revision = "0017_console_speed"
branch_labels = None
depends_on = None

_LEASED = ("router_state", "export_cursors")


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("taken_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    # A lease held during the upgrade is not carried over: every collector stops for a
    # migration, and the first to start takes each singleton afresh.
    for table in _LEASED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("lease_until")
            batch.drop_column("owner")


def downgrade() -> None:
    for table in _LEASED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("owner", sa.String(length=100), nullable=True))
            batch.add_column(sa.Column("lease_until", UTCDateTime, nullable=True))
    op.drop_table("leases")
