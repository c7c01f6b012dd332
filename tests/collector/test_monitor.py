"""The silent-agent monitor: the pure decision, the rule it reads, and one pass over the store."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from agent.events import Event, Severity, SilentEvidence
from collector.monitor import Liveness, find_silent, load_silent_rule, silent_event
from collector.store.database import Database
from collector.store.tables import agents, events
from tests.collector.conftest import EnrolledAgent, event, heartbeat, post_events

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _agent(last_seen_s_ago: float | None, interval: float | None = 60, **kw: Any) -> Liveness:
    seen = None if last_seen_s_ago is None else NOW - timedelta(seconds=last_seen_s_ago)
    return Liveness("a1", "ws-1", seen, interval, **kw)


def test_quiet_past_deadline_is_silent() -> None:
    """An agent quiet for more than missed × interval is silent."""
    assert find_silent([_agent(181)], NOW, 3, 60) == [_agent(181)]


def test_quiet_within_deadline_is_not() -> None:
    """An agent quiet for less than missed × interval is not silent."""
    assert find_silent([_agent(179)], NOW, 3, 60) == []


def test_default_interval_used() -> None:
    """An agent that never sent a heartbeat is judged by the default interval."""
    assert find_silent([_agent(100, interval=None)], NOW, 3, 30) == [_agent(100, interval=None)]


def test_revoked_never_silent() -> None:
    """A revoked agent is never reported silent."""
    assert find_silent([_agent(10_000, revoked_at=NOW)], NOW, 3, 60) == []


def test_already_silent_not_again() -> None:
    """An agent already marked silent is not reported again."""
    assert find_silent([_agent(10_000, silent_since=NOW)], NOW, 3, 60) == []


def test_never_seen_not_silent() -> None:
    """An enrolled agent that never sent anything is not silent."""
    assert find_silent([_agent(None)], NOW, 3, 60) == []


def test_rule_read_from_policy(tmp_path: Path) -> None:
    """missed_heartbeats and severity come from the agent policy's agent.silent rule."""
    (tmp_path / "agent.yaml").write_text(
        "kind: agent\nschema_version: 1\nrules:\n  - id: agent.silent\n"
        "    desc: silent agents, tune missed_heartbeats\n    severity: critical\n"
        "    tags: [stable]\n    match: {missed_heartbeats: 5}\n", encoding="utf-8")
    rule = load_silent_rule(tmp_path)
    assert (rule.missed_heartbeats, rule.severity) == (5, Severity.CRITICAL)


def test_rule_defaults_when_absent(tmp_path: Path) -> None:
    """Without the rule the monitor waits for 3 missed heartbeats."""
    assert load_silent_rule(tmp_path).missed_heartbeats == 3


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


def test_silent_event_is_deterministic() -> None:
    """The event id depends only on the agent and its last-seen time, and the event validates."""
    agent = Liveness("0f8fad5b-d9cb-469f-a165-70867728950e", "ws-1", NOW, 60.0)
    rule = load_silent_rule(None)
    first = silent_event(agent, rule, 60, NOW + timedelta(minutes=5))
    second = silent_event(agent, rule, 60, NOW + timedelta(minutes=9))
    assert first.id == second.id
    Event.model_validate(first.model_dump())
    assert "ws-1" in first.summary and "失联" in first.summary
    assert SilentEvidence.model_validate(first.evidence).missed_heartbeats == 3


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
