"""Planner statistics: SQLite's are refreshed when a table drifts; PostgreSQL's autovacuum runs."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest
from sqlalchemy import literal, select, text
from sqlalchemy.dialects import sqlite
from starlette.datastructures import QueryParams
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from collector.console import params
from collector.store.database import Database
from collector.store.events import event_conditions
from collector.store.tables import events
from collector.store_statistics import (
    StatisticsTask,
    TableCount,
    autovacuum_runs,
    refresh,
    table_counts,
)
from tests.collector.conftest import enroll, event, post_events

SEVERITIES = ("info", "low", "medium", "high", "critical")
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def count_plan(db: Database, query: str = "host=ws-07") -> str:
    """EXPLAIN QUERY PLAN of the console's per-severity count under a filter, run by the pool."""
    where = params.event_filter(QueryParams(query), UTC)
    query = select(literal(1)).where(events.c.severity == 1, *event_conditions(where)).limit(1001)
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with db.read() as conn:
        return " | ".join(str(row[-1]) for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))


def ingest(
    client: TestClient, db: Database, agents: int = 4, batches: int = 5, size: int = 100
) -> int:
    """Events of 40 hosts, 8 accounts and every severity, POSTed in batches as agents send them."""
    total = 0
    for a in range(agents):
        who = enroll(client, db, hostname=f"agent-{a}")
        seq = 1
        for _ in range(batches):
            batch = [
                event(who.agent_id, seq + i, host=f"ws-{(seq + i + a) % 40:02d}",
                      severity=SEVERITIES[(seq + i) % len(SEVERITIES)], kind="account.session",
                      evidence={"account": f"clerk{(seq + i) % 8}", "action": "open",
                                "session_id": str(seq + i)})
                for i in range(size)
            ]
            response = post_events(client, who, batch, compress=True)
            assert response.status_code == 200, response.text
            seq += size
            total += size
    return total


def test_a_table_with_rows_and_no_statistics_is_stale() -> None:
    """Rows without statistics (migration 0005 analyzed an empty table) need an ANALYZE."""
    assert TableCount("events", rows=1, analyzed_rows=None).stale
    assert not TableCount("events", rows=0, analyzed_rows=None).stale


def test_drift_beyond_a_factor_of_two_either_way_is_stale() -> None:
    """Growth or shrinkage past twofold needs an ANALYZE; less does not."""
    assert TableCount("events", rows=2001, analyzed_rows=1000).stale
    assert TableCount("events", rows=400, analyzed_rows=1000).stale
    assert not TableCount("events", rows=1900, analyzed_rows=1000).stale
    assert not TableCount("events", rows=600, analyzed_rows=1000).stale


@sqlite_only
def test_refresh_gives_pooled_connections_the_host_and_account_indexes(
    client: TestClient, db: Database
) -> None:
    """After ingest and a refresh, the pool's connections count by the host or account index.

    1,500 events per account: more than the first thousand entries of its index,
    which is all that ``PRAGMA analysis_limit=1000`` would have sampled.
    """
    ingest(client, db, agents=4, batches=3, size=1000)
    # The count has an index of its own (host, severity, time): no statistics needed for it.
    assert "ix_events_host_severity_time" in count_plan(db)

    analyzed = refresh(db)

    assert "events" in {count.table for count in analyzed}
    for query, index in (("host=ws-07", "ix_events_host_severity_time"),
                         ("account=clerk3", "ix_events_account_severity_time")):
        plan = count_plan(db, query)
        assert f"INDEX {index} " in plan and "SCAN" not in plan, plan


@sqlite_only
def test_refresh_records_statistics_and_then_leaves_them_alone(
    client: TestClient, db: Database
) -> None:
    """sqlite_stat1 holds the events indexes after a refresh; a second refresh analyzes nothing."""
    rows = ingest(client, db, agents=2, batches=2)
    analyzed: dict[str, int] = {}
    refresh(db, analyzed)

    with db.read() as conn:
        indexes = {name for (name,) in conn.execute(
            text("SELECT idx FROM sqlite_stat1 WHERE tbl = 'events'"))}
    assert {"ix_events_host_time_id", "ix_events_account_time_id"} <= indexes
    counted = {c.table: c for c in table_counts(db, analyzed)}["events"]
    assert counted.analyzed_rows == counted.rows == rows
    assert refresh(db, analyzed) == []


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_postgres_warns_exactly_when_autovacuum_is_off(db: Database) -> None:
    """On PostgreSQL the task reads the server's autovacuum setting and warns when it is off."""
    with db.read() as conn:
        server_runs_it = conn.execute(text("SHOW autovacuum")).scalar_one() == "on"

    with capture_logs() as logs:
        asyncio.run(StatisticsTask(db, 600).run())

    assert autovacuum_runs(db) is server_runs_it
    warned = any("autovacuum is off" in record["event"] for record in logs)
    assert warned is not server_runs_it
