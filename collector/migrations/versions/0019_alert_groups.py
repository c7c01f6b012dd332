"""Alert counts per host, account and rule kept by triggers; an index for sorting by count.

``alert_groups`` holds, per dimension (host, account, rule) and value, how many
alerts there are of each kind, status and severity. Triggers on ``alerts`` keep
it in the writer's own transaction, so ingest's batched upsert, triage and
anything else that writes alerts keep it without knowing: an insert adds one
to three buckets, a delete takes one from them, and an update moves the alert
only when one of those columns changed (ingest's upsert of an existing alert
changes ``count`` and ``last_seen``, and ``severity`` only when it rises).
Every alert writer already holds ``lock_alerts`` on PostgreSQL, so two
transactions never race on one bucket.

Revision ID: 0019_alert_groups
Revises: 0018_leases
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_alert_groups"
down_revision = "0018_leases"
branch_labels = None
depends_on = None

#: dimension name in alert_groups → the alerts column it counts
DIMENSIONS = (("host", "host"), ("account", "account"), ("rule", "rule_id"))
TRACKED = ("status", "severity", "kind", "host", "account", "rule_id")
COUNT_INDEX = ("ix_alerts_count_last_seen_id", ["count", "last_seen", "id"])


def _sqlite_bucket(dimension: str, column: str, row: str) -> str:
    return (f"dimension = '{dimension}' AND value IS {row}.{column} AND kind = {row}.kind "
            f"AND status = {row}.status AND severity = {row}.severity")


def _sqlite_add(row: str) -> str:
    return " ".join(
        "INSERT INTO alert_groups (dimension, value, kind, status, severity, alerts) "  # noqa: S608 (constant table and column names)
        f"SELECT '{dimension}', {row}.{column}, {row}.kind, {row}.status, {row}.severity, 0 "
        "WHERE NOT EXISTS (SELECT 1 FROM alert_groups WHERE "
        f"{_sqlite_bucket(dimension, column, row)}); "
        "UPDATE alert_groups SET alerts = alerts + 1 WHERE "
        f"{_sqlite_bucket(dimension, column, row)};"
        for dimension, column in DIMENSIONS)


def _sqlite_take(row: str) -> str:
    return " ".join(
        "UPDATE alert_groups SET alerts = alerts - 1 WHERE "  # noqa: S608 (constant table and column names)
        f"{_sqlite_bucket(dimension, column, row)}; "
        f"DELETE FROM alert_groups WHERE {_sqlite_bucket(dimension, column, row)} "
        "AND alerts <= 0;"
        for dimension, column in DIMENSIONS)


_CHANGED = " OR ".join(f"old.{column} IS NOT new.{column}" for column in TRACKED)
SQLITE_DDL = (
    f"CREATE TRIGGER alert_groups_insert AFTER INSERT ON alerts BEGIN {_sqlite_add('new')} END",
    f"CREATE TRIGGER alert_groups_delete AFTER DELETE ON alerts BEGIN {_sqlite_take('old')} END",
    f"CREATE TRIGGER alert_groups_update AFTER UPDATE OF {', '.join(TRACKED)} ON alerts "
    f"WHEN {_CHANGED} BEGIN {_sqlite_take('old')} {_sqlite_add('new')} END",
)
SQLITE_DROP = tuple(f"DROP TRIGGER IF EXISTS alert_groups_{op_}"
                    for op_ in ("update", "delete", "insert"))

PG_DDL = (
    """
    CREATE FUNCTION alert_groups_add(d text, v text, k text, s text, sev smallint, delta int)
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF v IS NULL THEN
            UPDATE alert_groups SET alerts = alerts + delta WHERE dimension = d
                AND value IS NULL AND kind = k AND status = s AND severity = sev;
        ELSE
            UPDATE alert_groups SET alerts = alerts + delta WHERE dimension = d
                AND value = v AND kind = k AND status = s AND severity = sev;
        END IF;
        IF NOT FOUND THEN
            INSERT INTO alert_groups (dimension, value, kind, status, severity, alerts)
                VALUES (d, v, k, s, sev, delta);
        ELSIF delta < 0 THEN
            DELETE FROM alert_groups WHERE dimension = d AND value IS NOT DISTINCT FROM v
                AND kind = k AND status = s AND severity = sev AND alerts <= 0;
        END IF;
    END $$
    """,
    """
    CREATE FUNCTION alert_groups_track() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            PERFORM alert_groups_add('host', OLD.host, OLD.kind, OLD.status, OLD.severity, -1);
            PERFORM alert_groups_add('account', OLD.account, OLD.kind, OLD.status,
                                     OLD.severity, -1);
            PERFORM alert_groups_add('rule', OLD.rule_id, OLD.kind, OLD.status,
                                     OLD.severity, -1);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM alert_groups_add('host', NEW.host, NEW.kind, NEW.status, NEW.severity, 1);
            PERFORM alert_groups_add('account', NEW.account, NEW.kind, NEW.status,
                                     NEW.severity, 1);
            PERFORM alert_groups_add('rule', NEW.rule_id, NEW.kind, NEW.status,
                                     NEW.severity, 1);
        END IF;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER alert_groups_insert_delete AFTER INSERT OR DELETE ON alerts "
    "FOR EACH ROW EXECUTE FUNCTION alert_groups_track()",
    f"CREATE TRIGGER alert_groups_update AFTER UPDATE OF {', '.join(TRACKED)} ON alerts "
    "FOR EACH ROW WHEN ("
    + " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in TRACKED)
    + ") EXECUTE FUNCTION alert_groups_track()",
)
PG_DROP = (
    "DROP TRIGGER IF EXISTS alert_groups_update ON alerts",
    "DROP TRIGGER IF EXISTS alert_groups_insert_delete ON alerts",
    "DROP FUNCTION IF EXISTS alert_groups_track()",
    "DROP FUNCTION IF EXISTS alert_groups_add(text, text, text, text, smallint, int)",
)
#: The alerts stored before the triggers existed.
BACKFILL = " UNION ALL ".join(
    f"SELECT '{dimension}', {column}, kind, status, severity, count(*) FROM alerts "  # noqa: S608 (constant table and column names)
    f"GROUP BY {column}, kind, status, severity"
    for dimension, column in DIMENSIONS)


def upgrade() -> None:
    op.create_table(
        "alert_groups",
        sa.Column("dimension", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.Column("alerts", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_alert_groups_dimension_value_kind_status_severity", "alert_groups",
                    ["dimension", "value", "kind", "status", "severity"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DDL if sqlite else PG_DDL:
        op.execute(statement)
    op.execute("INSERT INTO alert_groups (dimension, value, kind, status, severity, alerts) "
               + BACKFILL)
    op.create_index(COUNT_INDEX[0], "alerts", COUNT_INDEX[1])
    op.execute("ANALYZE alerts")
    op.execute("ANALYZE alert_groups")


def downgrade() -> None:
    op.drop_index(COUNT_INDEX[0], "alerts")
    for statement in SQLITE_DROP if op.get_bind().dialect.name == "sqlite" else PG_DROP:
        op.execute(statement)
    op.drop_index("ix_alert_groups_dimension_value_kind_status_severity", "alert_groups")
    op.drop_table("alert_groups")
