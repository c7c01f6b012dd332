"""The per-group alert counts kept by triggers answer the grouped list exactly as a GROUP BY.

Every test runs on SQLite and on PostgreSQL (``database_url`` fixture).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import command

from collector.alerts import service
from collector.store import migrate
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.tables import alert_groups, alerts, metadata
from tests.collector.conftest import TestClient, enroll, event, post_events

ALICE = Actor("alice", via="test", client_address="192.0.2.10")
SEVERITIES = ("low", "medium", "high", "critical")
NOW = datetime.now(UTC).replace(microsecond=0)


def plain_groups(db: Database, where: service.AlertFilter, by: str) -> list[dict[str, Any]]:
    """The grouped list as one GROUP BY over ``alerts``: what the counts must equal."""
    column = service.GROUPS[by]
    query = (
        sa.select(column.label("value"), sa.func.count().label("n"),
                  sa.func.max(alerts.c.severity).label("severity"),
                  sa.func.max(alerts.c.last_seen).label("last_seen"))
        .where(sa.and_(True, *service._conditions(where)))
        .group_by(column)
        .order_by(sa.func.count().desc(), sa.func.max(alerts.c.severity).desc(), column)
        .limit(service.MAX_GROUPS)
    )
    with db.read() as conn:
        return [{"value": r.value, "count": r.n, "severity": r.severity,
                 "last_seen": r.last_seen.isoformat()} for r in conn.execute(query)]


def counted(db: Database) -> set[tuple[Any, ...]]:
    g = alert_groups.c
    with db.read() as conn:
        rows = conn.execute(sa.select(g.dimension, g.value, g.kind, g.status, g.severity,
                                      g.alerts)).all()
    return {tuple(r) for r in rows}


def recounted(db: Database) -> set[tuple[Any, ...]]:
    """``alert_groups`` as it would be rebuilt from ``alerts`` now."""
    found = set()
    with db.read() as conn:
        for dimension, column in (("host", "host"), ("account", "account"),
                                  ("rule", "rule_id")):
            c = alerts.c[column]
            rows = conn.execute(
                sa.select(c, alerts.c.kind, alerts.c.status, alerts.c.severity, sa.func.count())
                .group_by(c, alerts.c.kind, alerts.c.status, alerts.c.severity)).all()
            found |= {(dimension, *r) for r in rows}
    return found


def filters() -> dict[str, service.AlertFilter]:
    return {
        "none": service.AlertFilter(),
        "open": service.AlertFilter(statuses=("new", "acknowledged", "in_progress")),
        "closed": service.AlertFilter(statuses=("closed",)),
        "severity=high": service.AlertFilter(severities=(3,)),
        "min_severity=high": service.AlertFilter(min_severity=3),
        "kind": service.AlertFilter(kinds=("custom.kind1",)),
        "host": service.AlertFilter(host="ws-02"),
        "account": service.AlertFilter(account="wb_03"),
        "rule": service.AlertFilter(rule_id="custom.rule-2"),
        "since": service.AlertFilter(since=NOW - timedelta(minutes=20)),
        "assignee": service.AlertFilter(assignee="alice"),
        "text": service.AlertFilter(text="ws-01"),
        "kind and open": service.AlertFilter(kinds=("custom.kind2",),
                                             statuses=("new", "acknowledged")),
    }


def check(db: Database) -> None:
    assert counted(db) == recounted(db)
    for name, where in filters().items():
        for by in service.GROUPS:
            expected = plain_groups(db, where, by)
            got = service.group_alerts(db, where, by)
            assert [{**g, "severity": None} for g in got] == [
                {**g, "severity": None} for g in expected], (name, by)
            assert [g["severity"] for g in got] == [
                service.Severity.from_rank(g["severity"]).value for g in expected], (name, by)


def test_counts_follow_ingest_triage_and_deletes(client: TestClient, db: Database) -> None:
    agents = {f"ws-{i:02d}": enroll(client, db, hostname=f"ws-{i:02d}") for i in range(4)}
    seq = dict.fromkeys(agents, 1)

    def ingest(count: int, shift: int) -> None:
        for i in range(count):
            host = f"ws-{i % 4:02d}"
            agent = agents[host]
            extra: dict[str, Any] = {}
            if i % 3:
                extra["rule_id"] = f"custom.rule-{i % 4}"
            evidence = {"account": f"wb_{i % 5:02d}"} if i % 2 else {"n": i % 6}
            item = event(agent.agent_id, seq[host], kind=f"custom.kind{i % 3}",
                         severity=SEVERITIES[(i + shift) % 4], host=host,
                         time=NOW - timedelta(minutes=(i * 7) % 40), evidence=evidence, **extra)
            seq[host] += 1
            assert post_events(client, agent, [item]).status_code == 200

    ingest(60, 0)
    check(db)
    # The same fingerprints again with other severities: some alerts rise a severity bucket.
    ingest(60, 1)
    listed = service.list_alerts(db, service.AlertFilter(), 1000)
    assert len(listed) > 20
    check(db)
    for alert in listed[:5]:
        service.acknowledge(db, alert["id"], ALICE)
    service.start(db, listed[0]["id"], ALICE)
    service.assign(db, listed[1]["id"], ALICE, "alice")
    for alert in listed[7:12]:
        service.close(db, alert["id"], ALICE, "true_positive", "已核实")
    check(db)
    service.reopen(db, listed[7]["id"], ALICE, "再看看")
    # A closed fingerprint's next event opens a second alert beside the closed one.
    ingest(60, 2)
    check(db)
    gone = listed[13]["id"]
    with db.write() as conn:
        for table in metadata.sorted_tables[::-1]:
            for key in table.foreign_keys:
                if key.column is alerts.c.id:
                    conn.execute(sa.delete(table).where(key.parent == gone))
        conn.execute(sa.delete(alerts).where(alerts.c.id == gone))
        conn.execute(sa.update(alerts).where(alerts.c.id == listed[14]["id"])
                     .values(host="ws-09", kind="custom.kind9"))
    check(db)


def test_upgrade_counts_the_alerts_already_stored(client: TestClient, db: Database) -> None:
    agent = enroll(client, db)
    batch = [event(agent.agent_id, i + 1, kind=f"custom.kind{i % 2}",
                   severity=SEVERITIES[i % 4], rule_id=f"custom.rule-{i % 3}",
                   evidence={"account": f"wb_{i % 2}"}) for i in range(12)]
    assert post_events(client, agent, batch).status_code == 200
    before = counted(db)
    assert before == recounted(db) and before
    config = migrate.alembic_config()
    with db.write() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0018_leases")
    migrate.upgrade(db)
    assert counted(db) == before
