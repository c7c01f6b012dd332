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


@pytest.mark.parametrize("spec", SPECS)
def test_folder_has_every_file(spec: DetectorSpec[Any, Any]) -> None:
    folder = DETECTORS_DIR / spec.name
    missing = [name for name in FILES if not (folder / name).is_file()]
    assert missing == [], f"agent/detectors/{spec.name}/ lacks {', '.join(missing)}"


@pytest.mark.parametrize("spec", SPECS)
def test_spec_is_built_from_its_own_modules(spec: DetectorSpec[Any, Any]) -> None:
    package = f"agent.detectors.{spec.name}"
    assert importlib.import_module(f"{package}.spec").SPEC is spec
    assert spec.policy_model.__module__ == f"{package}.policy"
    assert spec.evidence_models, f"{spec.name} declares no evidence models"
    for kind, model in spec.evidence_models.items():
        assert model.__module__ == f"{package}.evidence", kind
    observed = models_in(spec.observation_type)
    assert observed, f"{spec.name} declares no observation_type"
    for model in observed:
        assert model.__module__ == f"{package}.observations", model.__name__
    assert getattr(spec.make_detector, "__module__", None) == f"{package}.detector"
    if spec.settings_model is not None:
        assert spec.settings_model.__module__ == f"{package}.settings"
    assert callable(importlib.import_module(f"{package}.source").make_source)


def test_specs_leave_sources_and_readers_unimported() -> None:
    """The collector and the case runner read the specs; the I/O code loads only to run."""
    script = (
        "import sys, agent.registry\n"
        "loaded = [m for m in sys.modules if m.startswith('agent.detectors.')\n"
        "          and (m.endswith('.source') or '.readers' in m)]\n"
        "assert loaded == [], loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
