from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.detectors.documents.policy import DocumentsPolicy
from agent.policy.loader import load_policy_dir

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def documents_policy() -> DocumentsPolicy:
    section = load_policy_dir(REPO / "policies").section("documents")
    assert isinstance(section, DocumentsPolicy)
    return section


CLI = "import sys; from agent.cli import main; sys.exit(main())"


def run_scan(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``courtguard-agent scan`` in a real process, on the project's policies."""
    return subprocess.run(
        [sys.executable, "-c", CLI, "scan", "--policy-dir", str(REPO / "policies"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )
