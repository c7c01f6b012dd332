"""Whether an agent is alive: the ``agent.silent`` rule, the pure decision and its event.

Pure: the silent-agent pass (``collector.correlation.silent_pass``) applies
it to the ``agents`` table, ``SilentCorrelator`` to heartbeats given as data,
and ``agent list`` and the console to show each agent's status.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

from agent.events import Event, Severity, SilentEvidence
from agent.policy.loader import load_policy_dir
from agent.policy.models import PolicyDocument

RULE_ID: Final = "agent.silent"
#: Namespace of the deterministic ids of agent.silent events.
SILENT_NAMESPACE: Final = uuid.UUID("6f1c1d0e-3a51-5b8e-9c3e-2f6a4c9b7d10")
#: Summaries show Beijing time: the court's security team reads them.
BEIJING: Final = timezone(timedelta(hours=8), "北京时间")


@dataclass(frozen=True)
class SilentRule:
    """The parts of the ``agent.silent`` rule the monitor uses."""

    missed_heartbeats: int = 3
    severity: Severity = Severity.HIGH
    policy_version: str | None = None
    #: False when the policy turns the rule off: agents still show as silent, no event is made.
    enabled: bool = True


@dataclass(frozen=True)
class Liveness:
    """What the decision needs to know about one agent."""

    id: str
    hostname: str
    last_seen_at: datetime | None
    heartbeat_interval_s: float | None
    silent_since: datetime | None = None
    revoked_at: datetime | None = None


def load_silent_rule(policy_dir: Path | None) -> SilentRule:
    """The rule from ``policy_dir``'s ``agent`` policy; defaults when the rule is absent.

    A rule present with ``enabled: false`` is honoured: the monitor makes no events.

    Raises agent.errors.PolicyError when the files are there but invalid.
    """
    if policy_dir is None:
        return SilentRule()
    policies = load_policy_dir(policy_dir)
    return silent_rule_from(policies.section("agent"), policies.version)


def silent_rule_from(document: PolicyDocument | None, version: str | None) -> SilentRule:
    """The monitor's rule from an ``agent`` policy document; defaults when the rule is absent."""
    rule = document.rule(RULE_ID) if document is not None else None
    if rule is None:
        present = document is not None and any(r.id == RULE_ID for r in document.rules)
        return SilentRule(policy_version=version, enabled=not present)
    missed = rule.match.missed_heartbeats or SilentRule.missed_heartbeats
    return SilentRule(missed, rule.severity, version)


def overdue_after(last_seen: datetime, interval_s: float, missed: int) -> datetime:
    return last_seen + timedelta(seconds=interval_s * missed)


def is_overdue(agent: Liveness, now: datetime, missed: int, default_interval_s: float) -> bool:
    if agent.revoked_at is not None or agent.last_seen_at is None:
        return False
    interval = agent.heartbeat_interval_s or default_interval_s
    return now > overdue_after(agent.last_seen_at, interval, missed)


def find_silent(
    candidates: Iterable[Liveness], now: datetime, missed: int, default_interval_s: float
) -> list[Liveness]:
    """The agents that have just become silent: overdue, not revoked, not already silent."""
    return [
        agent for agent in candidates
        if agent.silent_since is None and is_overdue(agent, now, missed, default_interval_s)
    ]


def agent_status(
    row: Mapping[str, Any], now: datetime, missed: int, default_interval_s: float
) -> str:
    """online, silent, superseded, revoked or never_seen, for an ``agents`` row."""
    if row.get("superseded_by") is not None:
        return "superseded"
    if row["revoked_at"] is not None:
        return "revoked"
    if row["last_seen_at"] is None:
        return "never_seen"
    agent = Liveness(row["id"], row["hostname"], row["last_seen_at"], row["heartbeat_interval_s"])
    if row["silent_since"] is not None or is_overdue(agent, now, missed, default_interval_s):
        return "silent"
    return "online"


def silent_event(agent: Liveness, rule: SilentRule, default_interval_s: float,
                 now: datetime) -> Event:
    """The one ``agent.silent`` event for this agent's silence since ``last_seen_at``."""
    assert agent.last_seen_at is not None  # noqa: S101 (find_silent only returns seen agents)
    interval = agent.heartbeat_interval_s or default_interval_s
    since = agent.last_seen_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    evidence = SilentEvidence(
        last_seen=agent.last_seen_at, interval_s=interval, missed_heartbeats=rule.missed_heartbeats
    )
    return Event(
        id=uuid.uuid5(SILENT_NAMESPACE, f"{agent.id}/{agent.last_seen_at.isoformat()}"),
        seq=None,
        time=now,
        agent_id=uuid.UUID(agent.id),
        host=agent.hostname,
        kind="agent.silent",
        severity=rule.severity,
        rule_id=RULE_ID,
        policy_version=rule.policy_version,
        summary=(
            f"终端代理已失联：主机 {agent.hostname} 自 {since}（北京时间）起未发送心跳，"
            f"已超过 {rule.missed_heartbeats} 个心跳周期（每周期 {interval:g} 秒）"
        ),
        evidence=evidence.model_dump(mode="json"),
    )
