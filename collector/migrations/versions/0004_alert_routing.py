"""Alert routing: duty roster imports, silences, router lease and cursor, groups, escalations,
the notification outbox and its delivery log (docs/alerting.md).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.tables import JSONDoc, RowId, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "duty_assignments",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("shift_date", sa.Date(), nullable=False),
        sa.Column("shift", sa.String(length=64), nullable=False),
        sa.Column("position", sa.String(length=16), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("imported_at", UTCDateTime, nullable=False),
        sa.Column("imported_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_assignments")),
        sa.UniqueConstraint(
            "shift_date",
            "shift",
            "position",
            name=op.f("uq_duty_assignments_shift_date_shift_position"),
        ),
    )
    op.create_table(
        "escalations",
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("receiver", sa.String(length=64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("loop", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("next_at", UTCDateTime, nullable=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "route", name=op.f("pk_escalations")),
    )
    op.create_index("ix_escalations_next_at", "escalations", ["next_at"], unique=False)
    op.create_table(
        "notifications",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("receiver", sa.String(length=64), nullable=False),
        sa.Column("channel_index", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("group_key", sa.String(length=64), nullable=True),
        sa.Column("alert_ids", JSONDoc, nullable=False),
        sa.Column("persons", JSONDoc, nullable=False),
        sa.Column("message", JSONDoc, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("digest_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.Column("sent_channel", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        "ix_notifications_status_next_attempt_at",
        "notifications",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "notify_groups",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("receiver", sa.String(length=64), nullable=False),
        sa.Column("labels", JSONDoc, nullable=False),
        sa.Column("flush_at", UTCDateTime, nullable=True),
        sa.Column("last_flush_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_notify_groups")),
    )
    op.create_index("ix_notify_groups_flush_at", "notify_groups", ["flush_at"], unique=False)
    op.create_table(
        "router_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("cursor", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_router_state")),
    )
    op.create_table(
        "silences",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("matchers", JSONDoc, nullable=False),
        sa.Column("starts_at", UTCDateTime, nullable=False),
        sa.Column("ends_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("comment", sa.String(length=2000), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expired_at", UTCDateTime, nullable=True),
        sa.Column("expired_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"], unique=False)
    op.create_table(
        "deliveries",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.String(length=500), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_deliveries_notification_id_notifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    op.create_index(
        "ix_deliveries_notification_id", "deliveries", ["notification_id"], unique=False
    )
    op.create_table(
        "notify_group_alerts",
        sa.Column("group_key", sa.String(length=64), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("added_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_key"],
            ["notify_groups.key"],
            name=op.f("fk_notify_group_alerts_group_key_notify_groups"),
        ),
        sa.PrimaryKeyConstraint("group_key", "alert_id", name=op.f("pk_notify_group_alerts")),
    )
    op.create_index(
        "ix_notify_group_alerts_alert_id", "notify_group_alerts", ["alert_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("notify_group_alerts")
    op.drop_table("duty_assignments")
    op.drop_table("escalations")
    op.drop_table("notifications")
    op.drop_table("notify_groups")
    op.drop_table("router_state")
    op.drop_table("silences")
