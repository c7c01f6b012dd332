"""``agent.silent`` as a correlator over heartbeats, for the rule's cases.

The silent-agent pass (``SilentAgentPass``) decides silence from the ``agents`` table;
this correlator feeds the same pure decision (``find_silent``) and the same
event (``silent_event``) from heartbeat observations given as data, so the
rule's fire and silent cases test the monitor's own logic.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from agent.events import Finding
from agent.policy.models import PolicyDocument
from collector.correlation.liveness import Liveness, find_silent, silent_event, silent_rule_from

#: The interval assumed for an agent that has not said its own (collector setting's default).
DEFAULT_INTERVAL_S = 60.0


class HeartbeatObservation(BaseModel):
    """One heartbeat the collector stored: who, when, and the interval the agent announced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: uuid.UUID
    host: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    time: AwareDatetime
    interval_s: float | None = Field(default=None, gt=0)


class SilentCorrelator:
    """Keeps each agent's latest heartbeat; ``finalize`` reports the ones gone quiet."""

    name: ClassVar[str] = "agent_silent"
    policy_section: ClassVar[str] = "agent"
    description: ClassVar[str] = "Reports agents that missed several heartbeats in a row."
    #: The kinds only this correlator may store; ingest refuses them from agents.
    kinds: ClassVar[frozenset[str]] = frozenset({"agent.silent"})

    def __init__(self) -> None:
        self.latest: dict[uuid.UUID, HeartbeatObservation] = {}
        self.reported: set[uuid.UUID] = set()

    def evaluate(
        self, observation: HeartbeatObservation, policy: PolicyDocument, now: datetime
    ) -> list[Finding]:
        seen = self.latest.get(observation.agent_id)
        if seen is None or seen.time <= observation.time:
            self.latest[observation.agent_id] = observation
            self.reported.discard(observation.agent_id)
        return []

    def finalize(self, policy: PolicyDocument, now: datetime) -> list[Finding]:
        rule = silent_rule_from(policy, None)
        if not rule.enabled:
            return []
        candidates = [
            Liveness(
                str(agent_id),
                beat.host,
                beat.time,
                beat.interval_s,
                silent_since=now if agent_id in self.reported else None,
            )
            for agent_id, beat in self.latest.items()
        ]
        findings: list[Finding] = []
        for agent in find_silent(candidates, now, rule.missed_heartbeats, DEFAULT_INTERVAL_S):
            self.reported.add(uuid.UUID(agent.id))
            event = silent_event(agent, rule, DEFAULT_INTERVAL_S, now)
            findings.append(
                Finding(
                    kind=event.kind,
                    severity=event.severity,
                    rule_id=event.rule_id,
                    summary=event.summary,
                    evidence=event.evidence,
                    time=event.time,
                )
            )
        return findings
