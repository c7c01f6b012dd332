"""The example detector's registry entry."""

from __future__ import annotations

from typing import Any

from agent.detector import DetectorSpec, SourceContext
from tests.agent.example_detector.detector import ExampleDetector
from tests.agent.example_detector.evidence import EXAMPLE_EVIDENCE_MODELS
from tests.agent.example_detector.observations import CountObserved
from tests.agent.example_detector.policy import ExamplePolicy


def _make_source(context: SourceContext) -> Any:
    # Imported here, as the real detectors do: the spec alone loads no reader.
    from tests.agent.example_detector.source import make_source

    return make_source(context)


SPEC: DetectorSpec[Any, ExamplePolicy] = DetectorSpec(
    name=ExampleDetector.name,
    description=ExampleDetector.description,
    policy_section=ExampleDetector.policy_section,
    make_source=_make_source,
    make_detector=ExampleDetector,
    policy_model=ExamplePolicy,
    evidence_models=EXAMPLE_EVIDENCE_MODELS,
    observation_type=CountObserved,
)
