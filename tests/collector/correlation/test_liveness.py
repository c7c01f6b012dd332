"""Whether an agent is alive: the pure decision, the rule it reads, the event it makes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.events import Event, Severity, SilentEvidence
from collector.correlation.liveness import Liveness, find_silent, load_silent_rule, silent_event

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


