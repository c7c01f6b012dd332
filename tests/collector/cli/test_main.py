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


def test_every_command_module_imports_on_its_own() -> None:
    """Each command group's module loads first in a fresh process (no half-loaded package)."""
    root = Path(__file__).resolve().parents[3]
    modules = sorted(
        ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        for path in (root / "collector" / "cli").glob("*.py")
        if path.name != "__main__.py"  # runs the command line when imported
    )
    assert "collector.cli.alerting" in modules
    for module in modules:
        result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                                text=True, timeout=120, check=False)
        assert result.returncode == 0, (module, result.stderr)
