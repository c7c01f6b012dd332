"""Pure: a count at or above the rule's threshold is one finding."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from agent.events import Finding
from tests.agent.example_detector.evidence import CountEvidence
from tests.agent.example_detector.observations import CountObserved
from tests.agent.example_detector.policy import ExamplePolicy

RULE_ID = "example.count-high"


class ExampleDetector:
    name: ClassVar[str] = "example"
    policy_section: ClassVar[str] = "example"
    description: ClassVar[str] = "Reports a count at or above the policy's threshold."

    def evaluate(
        self, observation: CountObserved, policy: ExamplePolicy, now: datetime
    ) -> list[Finding]:
        rule = policy.rule(RULE_ID)
        if rule is None or observation.count < rule.match.min_count:
            return []
        return [
            Finding(
                kind="example.count",
                severity=rule.severity,
                rule_id=rule.id,
                summary=f"示例计数 {observation.count} 达到阈值 {rule.match.min_count}",
                evidence=CountEvidence(count=observation.count, min_count=rule.match.min_count),
                time=now,
            )
        ]

    def finalize(self, policy: ExamplePolicy, now: datetime) -> list[Finding]:
        return []
