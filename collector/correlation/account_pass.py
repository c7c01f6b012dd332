"""The account correlation pass: stored ``account.*`` events through ``AccountsCorrelator``.

Every ``account_correlation_interval_s`` (``collector.correlation.runner``):

1. re-read the ``accounts`` policy when its files changed (keeping the last
   good one if they turned bad);
2. read the ``account.*`` events of the look-back window (from the start of
   today in Asia/Shanghai, or 12 hours back if that is earlier), oldest first,
   at most ``MAX_EVENTS_PER_PASS``;
3. feed them to a fresh correlator and finalize it at ``now``;
4. store each finding as an event whose id is derived from what it concludes
   (``dedup_key``), so the next pass, or another collector process sharing
   PostgreSQL, cannot store it twice.

Stateless between passes: nothing is lost by a restart and nothing needs
coordinating between processes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Final

import structlog
from sqlalchemy import select

from agent.calendar_cn import local_time
from agent.events import Event, Finding
from agent.policy.models import PolicyDocument
from collector.correlation.accounts import (
    INPUT_KINDS,
    SESSION_MAX_AGE,
    AccountsCorrelator,
    StoredAccountEvent,
    dedup_key,
)
from collector.metrics import Metrics
from collector.policy.current import CurrentPolicy
from collector.store.database import Database
from collector.store.events import insert_event
from collector.store.tables import events

# The logger keeps the name operators' log filters already match.
log = structlog.get_logger("collector.account_correlation")

#: Namespace of the deterministic ids of correlated account events.
ACCOUNTS_NAMESPACE: Final = uuid.UUID("1b7d1f52-8c43-5a0e-9f4e-6a1d2c3b4e5f")
MAX_EVENTS_PER_PASS: Final = 200_000


def window_start(now: datetime) -> datetime:
    """The oldest event a pass reads: today's start in Shanghai, or 12 h back if earlier."""
    midnight = local_time(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return min(midnight.astimezone(now.tzinfo), now - SESSION_MAX_AGE)


class AccountPass:
    """A ``CorrelationRunner`` pass; ``check(now)`` alone is what tests and one-off callers use."""

    label = "account correlation"

    def __init__(
        self,
        db: Database,
        metrics: Metrics,
        policy: CurrentPolicy | Path | None,
        interval_s: float,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.policy_source = (
            policy if isinstance(policy, CurrentPolicy) else CurrentPolicy(db, policy, None)
        )
        self.interval_s = interval_s
        self.policy: PolicyDocument | None = None
        self.policy_version: str | None = None

    def reload_policy(self) -> None:
        """The accounts section of the collector's current policy (bundle, else files)."""
        policies = self.policy_source.get()
        if policies is not None:
            self.policy = policies.section("accounts")
            self.policy_version = policies.version

    def check(self, now: datetime) -> list[Event]:
        """One pass; returns the events this process stored (others were already there)."""
        self.reload_policy()
        if self.policy is None:
            return []
        c = events.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(c.id, c.agent_id, c.host, c.kind, c.rule_id, c.time, c.evidence)
                .where(c.kind.in_(INPUT_KINDS), c.time >= window_start(now), c.time <= now)
                .order_by(c.time, c.pk)
                .limit(MAX_EVENTS_PER_PASS)
            ).all()
        if len(rows) == MAX_EVENTS_PER_PASS:
            log.warning("account correlation window truncated", events=len(rows))
        correlator = AccountsCorrelator()
        agent_of_host: dict[str, str] = {}
        findings: list[Finding] = []
        for row in rows:
            agent_of_host[row.host] = row.agent_id
            observation = StoredAccountEvent(
                id=uuid.UUID(row.id),
                host=row.host,
                kind=row.kind,
                rule_id=row.rule_id,
                time=row.time,
                evidence=row.evidence or {},
            )
            findings += correlator.evaluate(observation, self.policy, now)
        findings += correlator.finalize(self.policy, now)
        made: list[Event] = []
        for finding in findings:
            event = self._event(finding, agent_of_host, now)
            if event is None:
                continue
            with self.db.write() as conn:
                if insert_event(conn, self.db.dialect, event, now):
                    made.append(event)
        for event in made:
            log.info(
                "account correlation",
                rule_id=event.rule_id,
                host=event.host,
                event_id=str(event.id),
            )
        return made

    def _event(
        self, finding: Finding, agent_of_host: dict[str, str], now: datetime
    ) -> Event | None:
        evidence = finding.evidence
        hosts = evidence.get("hosts")
        host = evidence.get("host") or (hosts[-1] if isinstance(hosts, list) and hosts else None)
        if not isinstance(host, str) or host not in agent_of_host:
            return None
        return Event(
            id=uuid.uuid5(ACCOUNTS_NAMESPACE, dedup_key(finding)),
            seq=None,
            time=finding.time or now,
            agent_id=uuid.UUID(agent_of_host[host]),
            host=host,
            kind=finding.kind,
            severity=finding.severity,
            rule_id=finding.rule_id,
            policy_version=self.policy_version,
            summary=finding.summary,
            evidence=evidence,
        )
