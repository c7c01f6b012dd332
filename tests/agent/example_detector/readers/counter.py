"""Reads the count from a file; gathers, never decides."""

from __future__ import annotations

from pathlib import Path

from tests.agent.example_detector.observations import CountObserved

COUNT_FILE = "example-count.txt"


def read_count(path: Path) -> CountObserved:
    return CountObserved(count=int(path.read_text().strip()))
