"""``courtguard-collector`` itself: settings, errors, ``python -m collector.cli``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_missing_config_file(tmp_path: Path) -> None:
    """An explicit config file that does not exist is a one-line error, exit 1, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "--config", str(tmp_path / "nope.toml"), "migrate"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: config file") and "Traceback" not in result.stderr
