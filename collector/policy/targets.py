"""Where each rule's cases run: by (scope, policy section), from the registries.

Agent-scope rules run through the agent's detectors (``agent.registry``) and
its own health rules (``agent.health.SELF_CHECK``); collector-scope rules
through the correlators (``collector.correlation.registry``).
"""

from __future__ import annotations

from typing import Any

from agent.health import SELF_CHECK
from agent.registry import DETECTORS
from collector.correlation.registry import CORRELATORS


def case_targets() -> dict[tuple[str, str], Any]:
    """Every evaluator that can run cases, keyed by (scope, section)."""
    targets: dict[tuple[str, str], Any] = {("agent", SELF_CHECK.policy_section): SELF_CHECK}
    for spec in DETECTORS:
        if spec.observation_type is not None:
            targets[("agent", spec.policy_section)] = spec
    for correlator in CORRELATORS:
        targets[("collector", correlator.policy_section)] = correlator
    return targets
