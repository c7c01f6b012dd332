"""Every case written beside a rule in ``policies/`` behaves as written.

Agent-scope rules run through the agent detector reading their section,
collector-scope rules through the collector correlator reading it. A section
with cases but nothing to run them is a failure, not a skip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.policy.cases import CaseTarget, run_case
from agent.policy.loader import load_policy_dir
from agent.registry import DETECTORS
from collector.correlation.registry import CORRELATORS

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
POLICIES = load_policy_dir(POLICY_DIR)


def _targets(scope: str) -> dict[str, CaseTarget]:
    specs: tuple[Any, ...] = DETECTORS if scope == "agent" else CORRELATORS
    return {spec.policy_section: spec for spec in specs if spec.observation_type is not None}


CASES = [
    pytest.param(kind, rule.id, rule.scope, case, id=f"{rule.id}:{case.name}")
    for kind, document in sorted(POLICIES.documents.items())
    for rule in document.rules
    for case in rule.cases
]


@pytest.mark.parametrize(("kind", "rule_id", "scope", "case"), CASES)
def test_shipped_rule_case(kind: str, rule_id: str, scope: str, case: Any) -> None:
    target = _targets(scope).get(kind)
    assert target is not None, f"{rule_id} has cases but no {scope} evaluator reads {kind!r}"
    outcome = run_case(target, POLICIES.documents[kind], rule_id, case)
    assert outcome.passed, outcome.problem
