"""Indexes for the console's sort orders and single filters; a trigram index for free text.

SQLite: an FTS5 table ``events_fts`` (trigram tokenizer, external content on
``events``) kept by triggers. PostgreSQL: ``pg_trgm`` GIN indexes on the
searched columns; when the extension cannot be created (not installed, no
privilege) the migration logs why and the search scans instead.

Revision ID: 0014_console_triage
Revises: 0013_siem_export
Create Date: 2026-12-07
"""

from __future__ import annotations

import logging

from alembic import op

from collector.store.fulltext import (
    PG_TRIGRAM_INDEXES,
    SQLITE_ALERTS_FTS_DDL,
    SQLITE_ALERTS_FTS_DROP,
    SQLITE_FTS_DDL,
    SQLITE_FTS_DROP,
)

revision = "0014_console_triage"
down_revision = "0013_siem_export"
branch_labels = None
depends_on = None

log = logging.getLogger("collector.migrations")

INDEXES = (
    ("ix_events_rule_id_time_id", "events", ["rule_id", "time", "id"]),
    ("ix_events_summary_time_id", "events", ["summary", "time", "id"]),
    ("ix_events_host_severity_time", "events", ["host", "severity", "time"]),
    ("ix_events_account_severity_time", "events", ["account", "severity", "time"]),
    ("ix_events_kind_severity_time", "events", ["kind", "severity", "time"]),
    ("ix_events_rule_id_severity_time", "events", ["rule_id", "severity", "time"]),
    ("ix_alerts_severity_last_seen_id", "alerts", ["severity", "last_seen", "id"]),
    ("ix_alerts_rule_id_last_seen_id", "alerts", ["rule_id", "last_seen", "id"]),
    ("ix_alerts_assignee_last_seen_id", "alerts", ["assignee", "last_seen", "id"]),
    ("ix_alerts_status_severity_last_seen_id", "alerts",
     ["status", "severity", "last_seen", "id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # A savepoint, so a refused CREATE EXTENSION leaves the migration's transaction usable.
        savepoint = bind.begin_nested()
        try:
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except Exception as exc:
            savepoint.rollback()
            log.warning("pg_trgm is not available (%s); free-text search on the console will "
                        "scan instead of using a trigram index", str(exc).splitlines()[0])
        else:
            savepoint.commit()
            for statement in PG_TRIGRAM_INDEXES:
                bind.exec_driver_sql(statement)
    else:
        for statement in (*SQLITE_FTS_DDL, *SQLITE_ALERTS_FTS_DDL):
            bind.exec_driver_sql(statement)
    op.execute("ANALYZE events")
    op.execute("ANALYZE alerts")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in PG_TRIGRAM_INDEXES:
            name = statement.split(" INDEX IF NOT EXISTS ")[1].split(" ")[0]
            bind.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    else:
        for statement in (*SQLITE_ALERTS_FTS_DROP, *SQLITE_FTS_DROP):
            bind.exec_driver_sql(statement)
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table)
