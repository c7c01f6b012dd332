"""The outreach detector's registry entry (see ``agent.registry``)."""

from __future__ import annotations

from typing import Any

from agent.detector import DetectorSpec, source_in
from agent.detectors.outreach.detector import OutreachDetector
from agent.detectors.outreach.evidence import OUTREACH_EVIDENCE_MODELS
from agent.detectors.outreach.observations import OutreachObservation
from agent.detectors.outreach.policy import NetworksPolicy

SPEC: DetectorSpec[Any, NetworksPolicy] = DetectorSpec(
    name=OutreachDetector.name,
    description=OutreachDetector.description,
    policy_section=OutreachDetector.policy_section,
    make_source=source_in(__package__),
    make_detector=OutreachDetector,
    policy_model=NetworksPolicy,
    evidence_models=OUTREACH_EVIDENCE_MODELS,
    # Flows (kernel filter, NFLOG) and responses need it; links, routes, probes do not.
    capabilities=frozenset({"CAP_NET_ADMIN"}),
    runs_degraded=True,
    finalize_every_s=5.0,
    observation_type=OutreachObservation,
)
