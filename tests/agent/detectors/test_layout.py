"""Every detector has the same shape: one folder, the same files, its spec built from them.

docs/architecture.md ("How to add a detector") describes this layout; a
detector that strays from it fails here, naming what is missing or where a
model comes from instead.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import agent.detectors
from agent.detector import DetectorSpec
from agent.registry import DETECTORS

DETECTORS_DIR = Path(agent.detectors.__file__).parent
#: The files every detector's folder holds (``settings.py`` only with a settings table).
FILES = ("spec.py", "policy.py", "observations.py", "evidence.py", "detector.py", "source.py",
         "readers/__init__.py")
SPECS = [pytest.param(spec, id=spec.name) for spec in DETECTORS]


def models_in(annotation: Any) -> set[type[BaseModel]]:
    """The pydantic models an observation type names (a model, or an annotated union of them)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {annotation}
    found: set[type[BaseModel]] = set()
    for argument in typing.get_args(annotation):
        found |= models_in(argument)
    return found


def test_every_detector_folder_is_registered() -> None:
    folders = {p.name for p in DETECTORS_DIR.iterdir() if (p / "__init__.py").exists()}
    assert folders == {spec.name for spec in DETECTORS}


def layout_problems(spec: DetectorSpec[Any, Any], folder: Path, package: str) -> list[str]:
    """What keeps the detector in ``folder`` (importable as ``package``) from the shape."""
    problems = [f"{folder.name}/ lacks {name}" for name in FILES if not (folder / name).is_file()]
    if problems:
        return problems

    def comes_from(what: str, thing: Any, module: str) -> None:
        if getattr(thing, "__module__", None) != f"{package}.{module}":
            problems.append(f"{what} {getattr(thing, '__name__', thing)} is not in {module}.py")

    if getattr(importlib.import_module(f"{package}.spec"), "SPEC", None) is not spec:
        problems.append("spec.py does not define this spec as SPEC")
    comes_from("policy model", spec.policy_model, "policy")
    if not spec.evidence_models:
        problems.append("no evidence models")
    for model in spec.evidence_models.values():
        comes_from("evidence model", model, "evidence")
    observed = models_in(spec.observation_type)
    if not observed:
        problems.append("no observation_type")
    for model in observed:
        comes_from("observation model", model, "observations")
    comes_from("detector", spec.make_detector, "detector")
    if spec.settings_model is not None:
        comes_from("settings model", spec.settings_model, "settings")
    if not callable(getattr(importlib.import_module(f"{package}.source"), "make_source", None)):
        problems.append("source.py defines no make_source")
    return problems


@pytest.mark.parametrize("spec", SPECS)
def test_detector_has_the_shape(spec: DetectorSpec[Any, Any]) -> None:
    problems = layout_problems(spec, DETECTORS_DIR / spec.name, f"agent.detectors.{spec.name}")
    assert problems == []


def test_specs_leave_sources_and_readers_unimported() -> None:
    """The collector and the case runner read the specs; the I/O code loads only to run."""
    script = (
        "import sys, agent.registry\n"
        "loaded = [m for m in sys.modules if m.startswith('agent.detectors.')\n"
        "          and (m.endswith('.source') or '.readers' in m)]\n"
        "assert loaded == [], loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
