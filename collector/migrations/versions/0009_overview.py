"""Alerts indexed by when they were opened and closed, for the console's overview.

The overview counts, per pillar, the alerts opened and closed today and in
the last 7 and 30 days (collector/console/overview.py). Without these
indexes both were scans of the whole alerts table, which only grows.

Revision ID: 0009_overview
Revises: 0008_directory_users
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0009_overview"
down_revision = "0008_directory_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])
    op.create_index("ix_alerts_closed_at", "alerts", ["closed_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_closed_at", table_name="alerts")
    op.drop_index("ix_alerts_created_at", table_name="alerts")
