"""Events carry the evidence's account as a column; indexes for the console's filters.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("account", sa.String(256), nullable=True))
    # Events stored before this revision: the account from their evidence, when it is text.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE events SET account = left(evidence ->> 'account', 256) "
            "WHERE jsonb_typeof(evidence -> 'account') = 'string'"
        )
    else:
        op.execute(
            "UPDATE events SET account = substr(json_extract(evidence, '$.account'), 1, 256) "
            "WHERE json_type(evidence, '$.account') = 'text'"
        )
    op.create_index("ix_events_severity_time_id", "events", ["severity", "time", "id"])
    op.create_index("ix_events_account_time_id", "events", ["account", "time", "id"])
    op.create_index("ix_alerts_host_last_seen_id", "alerts", ["host", "last_seen", "id"])
    op.create_index("ix_alerts_account_last_seen_id", "alerts", ["account", "last_seen", "id"])
    # Without statistics for the new indexes SQLite's planner may pick the severity index for
    # a host filter and read a million rows; PostgreSQL's autovacuum would get there later.
    op.execute("ANALYZE events")
    op.execute("ANALYZE alerts")


def downgrade() -> None:
    op.drop_index("ix_alerts_account_last_seen_id", "alerts")
    op.drop_index("ix_alerts_host_last_seen_id", "alerts")
    op.drop_index("ix_events_account_time_id", "events")
    op.drop_index("ix_events_severity_time_id", "events")
    op.drop_column("events", "account")
