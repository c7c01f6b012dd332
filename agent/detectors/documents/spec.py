"""The documents detector's registry entry (see ``agent.registry``)."""

from __future__ import annotations

from typing import Any

from agent.detector import DetectorSpec, source_in
from agent.detectors.documents.detector import DocumentsDetector
from agent.detectors.documents.evidence import DOCUMENT_EVIDENCE_MODELS
from agent.detectors.documents.observations import DocumentObservation
from agent.detectors.documents.policy import DocumentsPolicy

SPEC: DetectorSpec[Any, DocumentsPolicy] = DetectorSpec(
    name=DocumentsDetector.name,
    description=DocumentsDetector.description,
    policy_section=DocumentsDetector.policy_section,
    make_source=source_in(__package__),
    make_detector=DocumentsDetector,
    policy_model=DocumentsPolicy,
    evidence_models=DOCUMENT_EVIDENCE_MODELS,
    finalize_every_s=3600.0,
    observation_type=DocumentObservation,
)
