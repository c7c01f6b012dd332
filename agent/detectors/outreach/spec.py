"""The outreach detector's registry entry (see ``agent.registry``)."""

from __future__ import annotations

from typing import Any

from agent.detector import DetectorSpec, SourceContext
from agent.detectors.outreach.detector import OutreachDetector
from agent.detectors.outreach.evidence import OUTREACH_EVIDENCE_MODELS
from agent.detectors.outreach.observations import OutreachObservation
from agent.detectors.outreach.policy import NetworksPolicy


def _make_source(context: SourceContext) -> Any:
    # Imported here: the collector and the case runner need the spec, not the netlink code.
    from agent.detectors.outreach.source import make_source

    return make_source(context)


SPEC: DetectorSpec[Any, NetworksPolicy] = DetectorSpec(
    name=OutreachDetector.name,
    description=OutreachDetector.description,
    policy_section=OutreachDetector.policy_section,
    make_source=_make_source,
    make_detector=OutreachDetector,
    policy_model=NetworksPolicy,
    evidence_models=OUTREACH_EVIDENCE_MODELS,
    # Flows (kernel filter, NFLOG) and responses need it; links, routes, probes do not.
    capabilities=frozenset({"CAP_NET_ADMIN"}),
    runs_degraded=True,
    finalize_every_s=5.0,
    observation_type=OutreachObservation,
)
