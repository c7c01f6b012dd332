"""Reports: counts per day, host and rule (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collector.alerts import service
from collector.console import reports
from collector.store.audit import Actor
from collector.store.database import Database
from tests.collector.conftest import enroll, event, post_events


def test_report_counts(client: Any, db: Database) -> None:
    agent = enroll(client, db)
    doc = {"file_name": "a.docx", "sha256": "b" * 64, "size": 1, "verdict": "do_not_publish",
           "profile": "p", "action": "block", "basis": "b", "occurrences": [],
           "occurrences_total": 0}
    post_events(client, agent, [
        event(agent.agent_id, 1, kind="document.block", severity="high", evidence=doc),
        event(agent.agent_id, 2, kind="document.block", severity="high", evidence=doc),
        event(agent.agent_id, 3, kind="custom.thing", severity="low", host="=cmd|calc"),
        event(agent.agent_id, 4, severity="info"),
    ])
    alert = service.list_alerts(db, service.AlertFilter(kinds=["document.block"]), 10)[0]
    service.acknowledge(db, alert["id"], Actor("t"))
    today = datetime.now(UTC).date()
    summary = reports.summary(db, reports.period("day", today))
    summary_month = reports.summary(db, reports.period("month", today))
    if summary["events_by_family"]["document"] == 0:  # the events fell on the next Shanghai day
        summary = reports.summary(db, reports.period("day", today + timedelta(days=1)))
    assert summary["documents_blocked"] == 2 and summary["documents_with_findings"] == 1
    assert summary["alerts_opened"] == 2 and summary["alerts_by_status"]["acknowledged"] == 1
    assert summary["acknowledged"] == 1 and summary["ack_minutes_median"] is not None
    assert sum(summary["events_per_day"]["document"]) == 2
    assert summary_month["alerts_opened"] == 2
    text = reports.to_csv(summary)
    assert "top_hosts,'=cmd|calc,1" in text  # a formula from a workstation stays text
