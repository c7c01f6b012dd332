"""``--version`` on both commands: no configuration, no database, no root needed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.version import __version__
from collector.store.migrate import head_revision

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("as_nobody", [False, True])
def test_version_needs_no_config_and_no_root(as_nobody: bool, tmp_path: Path) -> None:
    prefix: list[str] = []
    if as_nobody:
        if os.geteuid() != 0 or shutil.which("setpriv") is None:
            pytest.skip("needs root and setpriv to run as another user")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("COURTGUARD_")},
           # A named configuration that does not exist is an error for every other command.
           "COURTGUARD_AGENT_CONFIG": str(tmp_path / "missing-agent.toml"),
           "COURTGUARD_COLLECTOR_CONFIG": str(tmp_path / "missing-collector.toml"),
           "COURTGUARD_COLLECTOR_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    agent = subprocess.run([*prefix, str(BIN / "courtguard-agent"), "--version"],
                           capture_output=True, text=True, env=env, timeout=60, check=False)
    collector = subprocess.run([*prefix, str(BIN / "courtguard-collector"), "--version"],
                               capture_output=True, text=True, env=env, timeout=60, check=False)
    assert agent.returncode == 0, agent.stderr
    assert agent.stdout == f"courtguard-agent {__version__}\n"
    assert collector.returncode == 0, collector.stderr
    assert collector.stdout == (
        f"courtguard-collector {__version__} (database schema {head_revision()})\n")
