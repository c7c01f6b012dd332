"""The accounts detector's registry entry (see ``agent.registry``)."""

from __future__ import annotations

from typing import Any

from agent.detector import DetectorSpec, source_in
from agent.detectors.accounts.detector import AccountsDetector
from agent.detectors.accounts.evidence import ACCOUNT_EVIDENCE_MODELS
from agent.detectors.accounts.observations import AccountsObservation
from agent.detectors.accounts.policy import AccountsPolicy
from agent.detectors.accounts.settings import AccountsSourceSettings
from agent.detectors.accounts.state import DESCRIPTION

SPEC: DetectorSpec[Any, Any] = DetectorSpec(
    name="accounts",
    description=DESCRIPTION,
    policy_section="accounts",
    make_source=source_in(__package__),
    make_detector=AccountsDetector,
    policy_model=AccountsPolicy,
    evidence_models=ACCOUNT_EVIDENCE_MODELS,
    settings_model=AccountsSourceSettings,
    runs_degraded=True,
    finalize_every_s=60.0,
    observation_type=AccountsObservation,
)
