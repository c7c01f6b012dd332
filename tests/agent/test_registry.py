"""The registry derives the policy kinds and evidence kinds from the detectors' specs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent.events import AGENT_EVIDENCE_MODELS, Evidence, register_evidence_models
from agent.policy.models import AgentPolicy, register_policy_kinds
from agent.registry import (
    DETECTORS,
    EVIDENCE_MODELS,
    POLICY_KINDS,
)
from agent.settings import AgentSettings


def test_policy_kinds_are_the_agents_own_and_each_detector_section() -> None:
    for spec in DETECTORS:
        assert POLICY_KINDS[spec.policy_section] is spec.policy_model
    assert POLICY_KINDS["agent"] is AgentPolicy


def test_a_policy_kind_declared_twice_is_refused() -> None:
    class Again(AgentPolicy):
        pass

    with pytest.raises(ValueError, match="declared twice"):
        register_policy_kinds(Again)
    register_policy_kinds(AgentPolicy)
    assert POLICY_KINDS["agent"] is AgentPolicy


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
    """The contract and policy language alone load no detector; any collector module brings
    the whole tables, the collector's own ``alerting`` kind included."""
    script = (
        "import sys, agent.events, agent.policy.models\n"
        "assert not [m for m in sys.modules if m.startswith('agent.detectors')]\n"
        "import collector.store.events\n"
        "kinds = set(agent.events.EVIDENCE_MODELS)\n"
        "assert {'account.login', 'document.redact', 'outreach.dns'} <= kinds\n"
        "policy = set(agent.policy.models.POLICY_KINDS)\n"
        "assert {'agent', 'accounts', 'documents', 'networks', 'alerting'} <= policy\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_the_daemon_does_not_load_the_document_checker_before_a_document() -> None:
    """The checker engine is imported at the first document, not with the registry or daemon."""
    probe = (
        "import sys, agent.daemon, agent.detectors.documents.source\n"
        "print(sorted(m for m in sys.modules if m.startswith('agent.detectors.documents.checker')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "[]"
