"""The accounts detector's registry entry (see ``agent.registry``)."""

from __future__ import annotations

from typing import Any

from agent.detector import DetectorSpec
from agent.detectors.accounts.detector import AccountsDetector
from agent.detectors.accounts.evidence import ACCOUNT_EVIDENCE_MODELS
from agent.detectors.accounts.observations import AccountsObservation
from agent.detectors.accounts.policy import AccountsPolicy
from agent.detectors.accounts.settings import AccountsSourceSettings
from agent.detectors.accounts.state import DESCRIPTION


def _make_source(context: Any) -> Any:
    # Imported here: the readers pull in psutil and watchdog, which rule cases never need.
    from agent.detectors.accounts.source import make_source

    return make_source(context)


SPEC: DetectorSpec[Any, Any] = DetectorSpec(
    name="accounts",
    description=DESCRIPTION,
    policy_section="accounts",
    make_source=_make_source,
    make_detector=AccountsDetector,
    policy_model=AccountsPolicy,
    evidence_models=ACCOUNT_EVIDENCE_MODELS,
    settings_model=AccountsSourceSettings,
    runs_degraded=True,
    finalize_every_s=60.0,
    observation_type=AccountsObservation,
)
