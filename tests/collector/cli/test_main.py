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


def test_modules_adding_commands_from_outside_the_package_import_on_their_own() -> None:
    """A module outside collector/cli that imports its helpers loads first in a fresh process."""
    root = Path(__file__).resolve().parents[3]
    importers = sorted(
        ".".join(path.relative_to(root).with_suffix("").parts)
        for path in (root / "collector").rglob("*.py")
        if "cli" not in path.relative_to(root / "collector").parts[:1]
        and "from collector.cli" in path.read_text(encoding="utf-8")
    )
    assert importers, "expected at least one command group outside collector/cli"
    for module in importers:
        result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                                text=True, timeout=120, check=False)
        assert result.returncode == 0, (module, result.stderr)
