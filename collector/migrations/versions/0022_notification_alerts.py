"""Notifications by alert (the alert page's 通知记录) and deliveries by time (the overview).

Revision ID: 0022_notification_alerts
Revises: 0021_releases
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.tables import JSONDoc

revision = "0022_notification_alerts"
down_revision = "0021_releases"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "notification_alerts",
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"],
                                name=op.f("fk_notification_alerts_notification_id_notifications")),
        sa.PrimaryKeyConstraint("notification_id", "alert_id", name=op.f("pk_notification_alerts")),
    )
    op.create_index("ix_notification_alerts_alert_id", "notification_alerts", ["alert_id"])
    op.create_index("ix_deliveries_at", "deliveries", ["at"])
    # Notifications queued before this revision: their alert ids become rows too.
    conn = op.get_bind()
    source = sa.table("notifications", sa.column("id", sa.BigInteger()),
                      sa.column("alert_ids", JSONDoc))
    target = sa.table("notification_alerts", sa.column("notification_id", sa.BigInteger()),
                      sa.column("alert_id", sa.BigInteger()))
    last = 0
    while True:
        rows = conn.execute(sa.select(source.c.id, source.c.alert_ids)
                            .where(source.c.id > last).order_by(source.c.id).limit(BATCH)).all()
        if not rows:
            break
        links = [{"notification_id": row.id, "alert_id": int(alert_id)}
                 for row in rows for alert_id in sorted(set(row.alert_ids or []))]
        if links:
            conn.execute(sa.insert(target), links)
        last = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_deliveries_at", table_name="deliveries")
    op.drop_table("notification_alerts")
