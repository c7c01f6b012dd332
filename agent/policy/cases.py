"""Run a rule's worked examples (``Rule.cases``) through the detector that reads its section.

A case is data: observations in, and whether a finding with the rule's id
must come out. The test suite and ``courtguard-collector policy check
--cases`` both run them through ``run_case``; a detector written for the
registry needs nothing more than an ``observation_type`` on its spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from agent.detector import Detector
from agent.events import Finding
from agent.policy.models import PolicyDocument, RuleCase


class CaseTarget(Protocol):
    """What cases run through: an agent ``DetectorSpec`` or a collector correlator's spec."""

    @property
    def name(self) -> str: ...
    @property
    def policy_section(self) -> str: ...
    @property
    def observation_type(self) -> Any: ...
    @property
    def make_detector(self) -> Callable[[], Detector[Any, Any]]: ...


@dataclass(frozen=True)
class CaseOutcome:
    """What one case produced; ``problem`` is None when it behaved as written."""

    rule_id: str
    case: str
    findings: tuple[Finding, ...]
    problem: str | None

    @property
    def passed(self) -> bool:
        return self.problem is None


def case_findings(spec: CaseTarget, document: PolicyDocument, case: RuleCase) -> list[Finding]:
    """Feed the case's observations to a fresh detector, then finalize it once."""
    if spec.observation_type is None:
        raise ValueError(f"detector {spec.name} declares no observation_type; cases cannot run")
    adapter: TypeAdapter[Any] = TypeAdapter(spec.observation_type)
    detector = spec.make_detector()
    findings: list[Finding] = []
    for index, raw in enumerate(case.observations):
        try:
            observation = adapter.validate_python(raw)
        except ValidationError as exc:
            raise ValueError(
                f"case {case.name}: observation {index} is not a {spec.name} observation: {exc}"
            ) from exc
        findings.extend(detector.evaluate(observation, document, case.now))
    findings.extend(detector.finalize(document, case.finalize_at or case.now))
    return findings


def judge(rule_id: str, case: RuleCase, findings: Iterable[Finding]) -> CaseOutcome:
    """Compare what came out with what the case expects of this rule."""
    produced = tuple(findings)
    fired = any(f.rule_id == rule_id for f in produced)
    problem = None
    if case.expect == "fires" and not fired:
        others = sorted({f.rule_id or f.kind for f in produced})
        problem = f"expected {rule_id} to fire; it did not (produced: {others or 'nothing'})"
    elif case.expect == "silent" and fired:
        problem = f"expected {rule_id} to stay silent; it fired"
    return CaseOutcome(rule_id=rule_id, case=case.name, findings=produced, problem=problem)


def run_case(
    spec: CaseTarget, document: PolicyDocument, rule_id: str, case: RuleCase
) -> CaseOutcome:
    """Run one case; a case that cannot run (bad observation, crash) is a failed outcome."""
    try:
        findings = case_findings(spec, document, case)
    except Exception as exc:
        return CaseOutcome(rule_id, case.name, (), f"case could not run: {exc}")
    return judge(rule_id, case, findings)


def run_document_cases(
    spec: CaseTarget, document: PolicyDocument, scope: str = "agent"
) -> list[CaseOutcome]:
    """Every case of every rule of ``scope`` in one document (disabled rules included)."""
    return [
        run_case(spec, document, rule.id, case)
        for rule in document.rules
        if rule.scope == scope
        for case in rule.cases
    ]
