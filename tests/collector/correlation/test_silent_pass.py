"""The silent-agent pass: one pass over the store, the policy it follows."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collector.correlation.liveness import load_silent_rule
from collector.store.database import Database
from collector.store.tables import agents, events
from tests.collector.conftest import EnrolledAgent, event, heartbeat, post_events

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_disabled_rule_makes_no_events(client: Any, agent: EnrolledAgent, tmp_path: Path) -> None:
    """A policy that turns agent.silent off is honoured: an overdue agent raises no event."""
    (tmp_path / "agent.yaml").write_text(
        "kind: agent\nschema_version: 1\nrules:\n  - id: agent.silent\n"
        "    desc: silent agents, tune missed_heartbeats\n    severity: high\n"
        "    tags: [stable]\n    enabled: false\n    match: {missed_heartbeats: 3}\n",
        encoding="utf-8")
    assert not load_silent_rule(tmp_path).enabled
    post_events(client, agent, [heartbeat(agent.agent_id, 1)])
    monitor = client.app.state.monitor
    monitor.policy.policy_dir = tmp_path
    assert monitor.check(datetime.now(UTC) + timedelta(hours=1)) == []


def test_check_makes_one_event(client: Any, db: Database, agent: EnrolledAgent) -> None:
    """One pass marks an overdue agent silent and stores one agent.silent event, only once."""
    post_events(client, agent, [heartbeat(agent.agent_id, 1)])
    monitor = client.app.state.monitor
    later = datetime.now(UTC) + timedelta(seconds=30 * 3 + 1)
    assert len(monitor.check(later)) == 1
    assert monitor.check(later + timedelta(minutes=1)) == []
    with db.read() as conn:
        kinds = conn.execute(sa.select(events.c.kind, events.c.seq, events.c.host)
                             .where(events.c.kind == "agent.silent")).all()
        silent_since = conn.execute(sa.select(agents.c.silent_since)).scalar_one()
    assert kinds == [("agent.silent", None, agent.hostname)]
    assert silent_since is not None


def test_batch_clears_silence(client: Any, db: Database, agent: EnrolledAgent) -> None:
    """The next batch from a silent agent clears silent_since."""
    post_events(client, agent, [event(agent.agent_id, 1)])
    client.app.state.monitor.check(datetime.now(UTC) + timedelta(hours=1))
    post_events(client, agent, [event(agent.agent_id, 2)])
    with db.read() as conn:
        assert conn.execute(sa.select(agents.c.silent_since)).scalar_one() is None


def test_monitor_rereads_the_policy_when_a_file_changes(client: Any, tmp_path: Path) -> None:
    """Editing agent.yaml takes effect on the next pass; an unchanged file is not parsed again."""
    policy = tmp_path / "agent.yaml"
    text = (
        "kind: agent\nschema_version: 1\nrules:\n  - id: agent.silent\n"
        "    desc: silent agents, tune missed_heartbeats\n    severity: high\n"
        "    tags: [stable]\n    match: {missed_heartbeats: 4}\n"
    )
    policy.write_text(text, encoding="utf-8")
    monitor = client.app.state.monitor
    monitor.policy.policy_dir = tmp_path
    monitor.reload_rule()
    assert monitor.rule.missed_heartbeats == 4
    policy.write_text(text.replace("missed_heartbeats: 4", "missed_heartbeats: 6"), "utf-8")
    os.utime(policy, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    monitor.reload_rule()
    assert monitor.rule.missed_heartbeats == 6
    monitor.rule = None  # a reload that parsed again would replace this
    monitor.reload_rule()
    assert monitor.rule is None
