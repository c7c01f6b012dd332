"""Retention: which events are old enough to go, and that pruning removes exactly those."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from collector.retention import Cutoffs, cutoffs, prune
from collector.store.database import Database
from collector.store.tables import events
from tests.collector.conftest import EnrolledAgent, event, heartbeat, post_events

NOW = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def test_default_like_retention_keeps_heartbeats_a_week_and_events_half_a_year() -> None:
    """7 and 180 days become cut-offs that many days before now."""
    limits = cutoffs(NOW, heartbeat_days=7, event_days=180)
    assert limits == Cutoffs(NOW - timedelta(days=7), NOW - timedelta(days=180))


def test_zero_keeps_forever() -> None:
    """A retention of 0 days keeps that class forever; heartbeats then follow other events."""
    assert cutoffs(NOW, heartbeat_days=0, event_days=0) == Cutoffs(None, None)
    assert cutoffs(NOW, heartbeat_days=0, event_days=30).heartbeats_before == NOW - timedelta(30)
    assert cutoffs(NOW, heartbeat_days=7, event_days=0) == Cutoffs(NOW - timedelta(7), None)


def test_heartbeats_never_outlive_other_events() -> None:
    """A heartbeat retention longer than the event retention is cut to the event retention."""
    assert cutoffs(NOW, heartbeat_days=365, event_days=30).heartbeats_before == NOW - timedelta(30)


def _stored(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        rows = conn.execute(sa.select(events.c.kind, events.c.seq).order_by(events.c.seq)).all()
    return [tuple(row) for row in rows]


def test_prune_removes_only_what_is_past_its_cutoff(
    client: Any, db: Database, agent: EnrolledAgent
) -> None:
    """Old heartbeats and very old events go; recent heartbeats and month-old events stay."""
    now = datetime.now(UTC)
    old_heartbeat = heartbeat(agent.agent_id, 1) | {"time": (now - timedelta(days=8)).isoformat()}
    batch = [
        old_heartbeat,
        heartbeat(agent.agent_id, 2),
        event(agent.agent_id, 3, time=now - timedelta(days=30)),
        event(agent.agent_id, 4, time=now - timedelta(days=200)),
        event(agent.agent_id, 5),
    ]
    assert post_events(client, agent, batch).status_code == 200
    pruned = prune(db, cutoffs(now, heartbeat_days=7, event_days=180))
    assert (pruned.heartbeats, pruned.events) == (1, 1)
    assert _stored(db) == [("agent.heartbeat", 2), ("agent.test", 3), ("agent.test", 5)]


def test_prune_works_through_more_rows_than_one_chunk(
    client: Any, db: Database, agent: EnrolledAgent
) -> None:
    """Rows beyond one chunk are deleted by further transactions until none is left."""
    old = datetime.now(UTC) - timedelta(days=400)
    batch = [event(agent.agent_id, seq, time=old) for seq in range(1, 12)]
    assert post_events(client, agent, batch).status_code == 200
    pruned = prune(db, cutoffs(datetime.now(UTC), heartbeat_days=7, event_days=180), chunk=3)
    assert pruned.events == 11
    assert _stored(db) == []


def test_retention_pass_is_counted_in_metrics(
    client: Any, db: Database, agent: EnrolledAgent, admin: dict[str, str]
) -> None:
    """The serve loop's pass reports what it deleted on /metrics."""
    old = datetime.now(UTC) - timedelta(days=400)
    assert post_events(client, agent, [event(agent.agent_id, 1, time=old)]).status_code == 200
    client.app.state.retention.run_once(datetime.now(UTC))
    text = client.get("/metrics", headers=admin).text
    assert 'courtguard_events_pruned_total{class="event"} 1.0' in text
