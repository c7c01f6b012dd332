from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.detectors.documents.policy import DocumentsPolicy
from agent.policy.loader import load_policy_dir

REPO = Path(__file__).resolve().parents[4]

#: A judgment naming a victim in full and his mobile number.
NAMED = (
    "刑事判决书\n(2024)京0105刑初9号\n被告人孙某，男，1990年3月1日出生。\n"
    "经审理查明，被告人孙某殴打被害人王小明，王小明的手机号码13812345678。\n"
)


@pytest.fixture(scope="session")
def documents_policy() -> DocumentsPolicy:
    section = load_policy_dir(REPO / "policies").section("documents")
    assert isinstance(section, DocumentsPolicy)
    return section


CLI = "import sys; from agent.cli import main; sys.exit(main())"


def run_scan(
    *args: str, timeout: float = 120, lang: str = "C.UTF-8"
) -> subprocess.CompletedProcess[str]:
    """``courtguard-agent scan`` in a real process, on the project's policies, under ``lang``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANGUAGE"))}
    env["LANG"] = lang
    return subprocess.run(
        [sys.executable, "-c", CLI, "scan", "--policy-dir", str(REPO / "policies"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
        env=env,
    )
