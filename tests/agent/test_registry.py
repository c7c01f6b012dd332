"""The registry derives the policy kinds and evidence kinds from the detectors' specs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent.events import AGENT_EVIDENCE_MODELS, Evidence, register_evidence_models
from agent.policy.models import AgentPolicy
from agent.registry import (
    DETECTORS,
    EVIDENCE_MODELS,
    OTHER_POLICY_MODELS,
    POLICY_KINDS,
    policy_kinds,
)
from agent.settings import AgentSettings


def test_policy_kinds_are_each_detector_section_and_the_other_kinds() -> None:
    assert {
        **{spec.policy_section: spec.policy_model for spec in DETECTORS},
        **{model.KIND: model for model in OTHER_POLICY_MODELS},
    } == POLICY_KINDS
    assert {"agent", "accounts", "documents", "networks", "alerting"} <= set(POLICY_KINDS)


def test_a_policy_kind_declared_twice_is_refused() -> None:
    class Again(AgentPolicy):
        pass

    with pytest.raises(ValueError, match="declared twice"):
        policy_kinds(DETECTORS, (AgentPolicy, Again))


def test_evidence_kinds_are_the_agents_own_and_each_detectors() -> None:
    expected = dict(AGENT_EVIDENCE_MODELS)
    for spec in DETECTORS:
        assert spec.evidence_models, f"{spec.name} declares no evidence models"
        expected.update(spec.evidence_models)
    assert expected == EVIDENCE_MODELS


def test_an_evidence_kind_bound_to_another_model_is_refused() -> None:
    class Other(Evidence):
        pass

    with pytest.raises(ValueError, match="declared twice"):
        register_evidence_models({"agent.heartbeat": Other})
    register_evidence_models({"agent.heartbeat": AGENT_EVIDENCE_MODELS["agent.heartbeat"]})


def test_each_detector_settings_model_is_its_table_in_agent_toml() -> None:
    for spec in DETECTORS:
        if spec.settings_model is not None:
            assert AgentSettings.model_fields[spec.name].annotation is spec.settings_model


def test_the_contract_imports_no_detector_and_the_collector_sees_every_evidence_kind() -> None:
    """``agent.events`` alone loads no detector; any collector module brings the whole table."""
    script = (
        "import sys, agent.events, agent.policy.models\n"
        "assert not [m for m in sys.modules if m.startswith('agent.detectors')]\n"
        "import collector.store.events\n"
        "kinds = set(agent.events.EVIDENCE_MODELS)\n"
        "assert {'account.login', 'document.redact', 'outreach.dns'} <= kinds\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
