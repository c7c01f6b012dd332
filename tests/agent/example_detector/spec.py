"""The example detector's registry entry."""

from __future__ import annotations

from typing import Any

from agent.detector import DetectorSpec, source_in
from tests.agent.example_detector.detector import ExampleDetector
from tests.agent.example_detector.evidence import EXAMPLE_EVIDENCE_MODELS
from tests.agent.example_detector.observations import CountObserved
from tests.agent.example_detector.policy import ExamplePolicy

SPEC: DetectorSpec[Any, ExamplePolicy] = DetectorSpec(
    name=ExampleDetector.name,
    description=ExampleDetector.description,
    policy_section=ExampleDetector.policy_section,
    make_source=source_in(__package__),
    make_detector=ExampleDetector,
    policy_model=ExamplePolicy,
    evidence_models=EXAMPLE_EVIDENCE_MODELS,
    observation_type=CountObserved,
)
