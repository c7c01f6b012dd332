"""The rule-case runner: fires, silent, and cases that cannot run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ValidationError

from agent.detector import DetectorSpec
from agent.events import Finding, Severity
from agent.policy.cases import run_document_cases
from agent.policy.models import PolicyDocument, Rule, RuleCase, StrictModel
from agent.testing import FakeSource


class PortMatch(StrictModel):
    port: int


class PortPolicy(PolicyDocument):
    KIND: ClassVar[str] = "ports"
    rules: list[Rule[PortMatch]]


class Connection(BaseModel):
    port: int


class PortDetector:
    name: ClassVar[str] = "ports"
    policy_section: ClassVar[str] = "ports"
    description: ClassVar[str] = "Flags connections to a listed port."

    def __init__(self) -> None:
        self.pending: list[Finding] = []

    def evaluate(self, observation: Connection, policy: PortPolicy, now: datetime) -> list[Finding]:
        return [
            Finding(
                kind="ports.hit", severity=rule.severity, rule_id=rule.id, summary="端口", time=now
            )
            for rule in policy.rules
            if rule.enabled and rule.match.port == observation.port
        ]

    def finalize(self, policy: PortPolicy, now: datetime) -> list[Finding]:
        return []


SPEC: DetectorSpec[Any, Any] = DetectorSpec(
    name="ports",
    description="Flags connections to a listed port.",
    policy_section="ports",
    make_source=lambda ctx: FakeSource(),
    make_detector=PortDetector,
    policy_model=PortPolicy,
    observation_type=Connection,
)
NOW = "2026-03-02T09:00:00+08:00"


def policy(*cases: dict[str, Any]) -> PortPolicy:
    return PortPolicy.model_validate(
        {
            "kind": "ports",
            "schema_version": 1,
            "rules": [
                {
                    "id": "ports.telnet",
                    "desc": "Telnet to anywhere is flagged.",
                    "severity": "high",
                    "tags": ["stable"],
                    "match": {"port": 23},
                    "cases": list(cases),
                }
            ],
        }
    )


def test_a_case_passes_when_the_rule_behaves_as_written() -> None:
    outcomes = run_document_cases(
        SPEC,
        policy(
            {"name": "telnet", "expect": "fires", "now": NOW, "observations": [{"port": 23}]},
            {"name": "ssh", "expect": "silent", "now": NOW, "observations": [{"port": 22}]},
        ),
    )
    assert [(o.case, o.passed) for o in outcomes] == [("telnet", True), ("ssh", True)]
    assert outcomes[0].findings[0].severity is Severity.HIGH


def test_a_wrong_expectation_is_reported_both_ways() -> None:
    outcomes = run_document_cases(
        SPEC,
        policy(
            {"name": "claims-fire", "expect": "fires", "now": NOW, "observations": [{"port": 22}]},
            {
                "name": "claims-quiet",
                "expect": "silent",
                "now": NOW,
                "observations": [{"port": 23}],
            },
        ),
    )
    assert "did not" in (outcomes[0].problem or "")
    assert "stay silent" in (outcomes[1].problem or "")


def test_an_observation_of_the_wrong_shape_fails_the_case_not_the_run() -> None:
    (outcome,) = run_document_cases(
        SPEC,
        policy({"name": "bad", "expect": "fires", "now": NOW, "observations": [{"prt": 23}]}),
    )
    assert outcome.problem is not None
    assert "not a ports observation" in outcome.problem


def test_a_case_clock_needs_an_offset() -> None:
    with pytest.raises(ValidationError, match="UTC offset"):
        RuleCase.model_validate(
            {"name": "naive", "expect": "fires", "now": "2026-03-02T09:00:00", "observations": [{}]}
        )
    aware = RuleCase.model_validate(
        {"name": "aware", "expect": "fires", "now": NOW, "observations": [{}]}
    )
    assert aware.now.astimezone(UTC).hour == 1
