"""A SQLite store filled through ingest gets planner statistics from the collector's schedule."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC
from pathlib import Path

from sqlalchemy import literal, select
from sqlalchemy.dialects import sqlite
from starlette.datastructures import QueryParams

from collector.console import params
from collector.store.events import event_conditions
from collector.store.tables import events
from tests.e2e.harness import Collector, agent_headers, batch_body, synthetic_events, wait_until

SEVERITIES = ("info", "low", "medium", "high", "critical")
HOSTS = 40


def console_filter_sql(query: str) -> list[str]:
    """The console's SQL for an events filter: the page, and one per-severity count."""
    where = params.event_filter(QueryParams(query), UTC)
    conditions = event_conditions(where)
    page = (select(events.c.id).where(*conditions)
            .order_by(events.c.time.desc(), events.c.id.desc()).limit(51))
    count = select(literal(1)).where(events.c.severity == 1, *conditions).limit(1001)
    return [str(q.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
            for q in (page, count)]


def analyzed_events(path: Path) -> set[str]:
    """The events indexes sqlite_stat1 holds statistics for."""
    with sqlite3.connect(path) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
            return set()
        return {idx for (idx,) in conn.execute(
            "SELECT idx FROM sqlite_stat1 WHERE tbl = 'events' AND idx IS NOT NULL")}


def test_scheduled_statistics_make_host_and_account_filters_use_their_index(
    tmp_path: Path,
) -> None:
    """After ingest and the scheduled check, sqlite_stat1 covers the events indexes and the
    console's host and account filters search their own index instead of the severity one."""
    store = tmp_path / "collector.db"
    collector = Collector(home=tmp_path, database_url=f"sqlite:///{store}")
    collector.extra_env["COURTGUARD_COLLECTOR_STATISTICS_INTERVAL_S"] = "0.5"
    collector.init()
    collector.start()
    try:
        token = collector.create_token("--uses", "4")
        sent = 0
        with collector.http() as client:
            for a in range(4):
                enrolled = client.post("/api/v1/enroll", json={
                    "token": token, "hostname": f"agent-{a}", "agent_version": "test"})
                enrolled.raise_for_status()
                agent = enrolled.json()
                for first in range(1, 1501, 500):
                    batch = synthetic_events(agent["agent_id"], first, 500)
                    for i, item in enumerate(batch):
                        item["host"] = f"ws-{(first + i + a) % HOSTS:02d}"
                        item["severity"] = SEVERITIES[(first + i) % len(SEVERITIES)]
                        item["kind"] = "account.session"
                        item["evidence"] = {"account": f"clerk{(first + i) % HOSTS:02d}",
                                            "action": "open", "session_id": str(first + i)}
                    response = client.post("/api/v1/events", headers=agent_headers(agent),
                                           content=batch_body(agent["agent_id"], batch))
                    assert response.status_code == 200, response.text
                    sent += len(response.json()["accepted"])
        assert sent == 6000

        # A refresh at exactly half the events (batches of 500 make 3,000 likely) is the last:
        # the store never grows past twofold again, so half counts as after ingest.
        def analyzed_after_ingest() -> bool:
            return any(
                record.get("event") == "planner statistics refreshed"
                and record["tables"].get("events", {}).get("rows", 0) * 2 >= sent
                for record in map(json.loads, collector.log().splitlines())
            )

        wait_until(analyzed_after_ingest, 60, "the scheduled check to analyze the ingested events")
        assert {"ix_events_host_time_id", "ix_events_account_time_id",
                "ix_events_severity_time_id"} <= analyzed_events(store)
        with sqlite3.connect(store) as conn:
            for query, page_index, count_index in (
                    ("host=ws-07", "ix_events_host_time_id", "ix_events_host_severity_time"),
                    ("account=clerk07", "ix_events_account_time_id",
                     "ix_events_account_severity_time")):
                for sql, index in zip(console_filter_sql(query), (page_index, count_index),
                                      strict=True):
                    plan = " | ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
                    assert f"INDEX {index} " in plan and "SCAN" not in plan, (query, plan)
    finally:
        collector.stop()
