"""The silent-agent monitor: an agent that stops its heartbeats becomes an ``agent.silent`` event.

Every ``silent_check_interval_s``:

1. re-read the ``agent.silent`` rule: from the newest signed bundle published
   for every group when there is one (the same source of truth the agents
   run), else from the policy directory (keeping the last good one if the
   files turned bad);
2. ask the pure ``find_silent`` which live agents have been quiet for longer
   than ``missed_heartbeats`` of their own heartbeat intervals;
3. for each, in one transaction: set ``silent_since`` (only if nobody else
   did and the agent was not heard from meanwhile) and insert one event whose
   id is derived from the agent and its last-seen time, so collector
   processes sharing PostgreSQL cannot make it twice.

The agent is cleared (``silent_since`` back to NULL) by its next batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

import structlog
from sqlalchemy import select, update

from agent.events import Event, Severity, SilentEvidence, utcnow
from agent.policy.loader import PolicySet, load_policy_dir
from agent.policy.models import PolicyDocument
from collector.metrics import Metrics
from collector.periodic import run_periodically
from collector.policy.current import CurrentPolicy
from collector.store.database import Database
from collector.store.events import insert_event
from collector.store.tables import agents

log = structlog.get_logger("collector.monitor")

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
    """online, silent, revoked or never_seen, for an ``agents`` row."""
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
    assert agent.last_seen_at is not None  # noqa: S101 - find_silent only returns seen agents
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


class SilentMonitor:
    """Runs the check on a timer; ``check`` alone is what tests and one-shot callers use."""

    def __init__(self, db: Database, metrics: Metrics, policy: CurrentPolicy | Path | None,
                 interval_s: float, default_heartbeat_interval_s: float) -> None:
        self.db = db
        self.metrics = metrics
        # A bare directory: its files only (no signing key to verify a bundle with).
        self.policy = (
            policy if isinstance(policy, CurrentPolicy) else CurrentPolicy(db, policy, None)
        )
        self.interval_s = interval_s
        self.default_heartbeat_interval_s = default_heartbeat_interval_s
        self.rule = SilentRule()
        self._derived_from: PolicySet | None = None
        self.reload_rule()

    def reload_rule(self) -> None:
        """Derive the rule again when the collector's policy changed (``CurrentPolicy``)."""
        policies = self.policy.get()
        if policies is None or policies is self._derived_from:
            return
        self._derived_from = policies
        self.rule = silent_rule_from(policies.section("agent"), policies.version)

    def status_of(self, row: Mapping[str, Any], now: datetime) -> str:
        """online, silent, revoked or never_seen, decided with the rule this monitor applies."""
        return agent_status(row, now, self.rule.missed_heartbeats,
                            self.default_heartbeat_interval_s)

    def check(self, now: datetime) -> list[Event]:
        """One pass; returns the events this process made."""
        self.reload_rule()
        if not self.rule.enabled:
            return []
        columns = (agents.c.id, agents.c.hostname, agents.c.last_seen_at,
                   agents.c.heartbeat_interval_s, agents.c.silent_since, agents.c.revoked_at)
        with self.db.read() as conn:
            rows = conn.execute(
                select(*columns).where(
                    agents.c.revoked_at.is_(None),
                    agents.c.silent_since.is_(None),
                    agents.c.last_seen_at.is_not(None),
                )
            ).all()
        candidates = [Liveness(*row) for row in rows]
        made: list[Event] = []
        for agent in find_silent(candidates, now, self.rule.missed_heartbeats,
                                 self.default_heartbeat_interval_s):
            event = silent_event(agent, self.rule, self.default_heartbeat_interval_s, now)
            with self.db.write() as conn:
                marked = conn.execute(
                    update(agents)
                    .where(
                        agents.c.id == agent.id,
                        agents.c.silent_since.is_(None),
                        agents.c.revoked_at.is_(None),
                        agents.c.last_seen_at == agent.last_seen_at,
                    )
                    .values(silent_since=now)
                ).rowcount
                if marked != 1 or not insert_event(conn, self.db.dialect, event, now):
                    continue
            made.append(event)
            self.metrics.silent_events.inc()
            log.warning("agent silent", agent_id=agent.id, hostname=agent.hostname,
                        last_seen_at=agent.last_seen_at.isoformat() if agent.last_seen_at else None,
                        event_id=str(event.id))
        return made

    async def run(self) -> None:
        """Check every ``interval_s`` until cancelled; a failed pass is logged, not fatal."""
        await run_periodically("silent-agent check", lambda: self.check(utcnow()), self.interval_s)
