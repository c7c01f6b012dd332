"""The ingest benchmark's mix has a real template for every kind an agent sends."""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ is scripts, not a package: its modules import by file name.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from ingest_mix import Mix, missing_kinds


def test_every_agent_kind_has_a_template() -> None:
    assert missing_kinds() == []


def test_every_template_is_a_valid_event() -> None:
    mix = Mix(per_kind=1)
    assert all(rows for rows in mix.templates.values())
