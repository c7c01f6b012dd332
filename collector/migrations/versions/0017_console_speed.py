"""Alert indexes that answer the kind filter and the grouped list from the index alone.

The host, account and rule indexes of the alert list gain ``severity`` and
``status`` as trailing columns, so grouping the filtered alerts by one of them
(count, highest severity, newest) and the counts by status and severity read
only the index. Every alert ingest updates ``last_seen``, which rewrites each
of these entries anyway, so the wider entries add no index writes. The kind
filter gets its own index in the list's default order, covering its counts.

Revision ID: 0017_console_speed
Revises: 0016_host_isolation
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0017_console_speed"
down_revision = "0016_host_isolation"
branch_labels = None
depends_on = None

#: (old index, its columns) → the covering index that replaces it
WIDENED = (
    ("ix_alerts_host_last_seen_id", ["host", "last_seen", "id"]),
    ("ix_alerts_account_last_seen_id", ["account", "last_seen", "id"]),
    ("ix_alerts_rule_id_last_seen_id", ["rule_id", "last_seen", "id"]),
)
COVERED = ["severity", "status"]
KIND_INDEX = ("ix_alerts_kind_severity_last_seen_id_status",
              ["kind", "severity", "last_seen", "id", "status"])


def upgrade() -> None:
    for name, columns in WIDENED:
        op.create_index(f"{name}_severity_status", "alerts", [*columns, *COVERED])
        op.drop_index(name, "alerts")
    op.create_index(KIND_INDEX[0], "alerts", KIND_INDEX[1])
    # The planner learns the new indexes' shape now, not at the next statistics refresh.
    op.execute("ANALYZE alerts")


def downgrade() -> None:
    op.drop_index(KIND_INDEX[0], "alerts")
    for name, columns in reversed(WIDENED):
        op.create_index(name, "alerts", columns)
        op.drop_index(f"{name}_severity_status", "alerts")
