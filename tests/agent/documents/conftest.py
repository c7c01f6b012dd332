from __future__ import annotations

from pathlib import Path

import pytest

from agent.policy.loader import load_policy_dir
from agent.policy.models import DocumentsPolicy

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def documents_policy() -> DocumentsPolicy:
    section = load_policy_dir(REPO / "policies").section("documents")
    assert isinstance(section, DocumentsPolicy)
    return section
