"""The silent-agent pass: an agent that stops its heartbeats becomes an ``agent.silent`` event.

Every ``silent_check_interval_s`` (``collector.correlation.runner``):

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

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select, update

from agent.events import Event
from agent.policy.loader import PolicySet
from collector.correlation.liveness import (
    Liveness,
    SilentRule,
    agent_status,
    find_silent,
    silent_event,
    silent_rule_from,
)
from collector.metrics import Metrics
from collector.policy.current import CurrentPolicy
from collector.store.database import Database
from collector.store.events import insert_event
from collector.store.tables import agents

# The logger keeps the name operators' log filters already match.
log = structlog.get_logger("collector.monitor")


class SilentAgentPass:
    """A ``CorrelationRunner`` pass; ``check(now)`` alone is what tests and one-off callers use."""

    label = "silent-agent check"

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
