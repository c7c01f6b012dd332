"""Every case written beside a rule in ``policies/`` behaves as written.

Agent-scope rules run through the agent detector (or the agent's own health
rules) reading their section, collector-scope rules through the collector
correlator reading it. A section with cases but nothing to run them is a
failure, not a skip; so is a shipped rule without a fire and a silent case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.policy.cases import run_case
from agent.policy.check import check_directory
from agent.policy.loader import load_policy_dir
from collector.policy.targets import case_targets

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
POLICIES = load_policy_dir(POLICY_DIR)
TARGETS = case_targets()

CASES = [
    pytest.param(kind, rule.id, rule.scope, case, id=f"{rule.id}:{case.name}")
    for kind, document in sorted(POLICIES.documents.items())
    for rule in document.rules
    for case in rule.cases
]


@pytest.mark.parametrize(("kind", "rule_id", "scope", "case"), CASES)
def test_shipped_rule_case(kind: str, rule_id: str, scope: str, case: Any) -> None:
    target = TARGETS.get((scope, kind))
    assert target is not None, f"{rule_id} has cases but no {scope} evaluator reads {kind!r}"
    outcome = run_case(target, POLICIES.documents[kind], rule_id, case)
    assert outcome.passed, outcome.problem


def test_shipped_policies_pass_policy_check() -> None:
    """Every shipped file validates, lints clean and gives each rule a fire and a silent case."""
    result = check_directory(POLICY_DIR)
    assert result.issues == [], "\n".join(issue.render() for issue in result.issues)
