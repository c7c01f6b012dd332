"""Every benchmark script starts: its imports resolve and it answers ``--help``.

The benches are run by hand, not by the suite, so a refactor of what they import
(a helper moved out of ``bench/console.py``, a module renamed) would otherwise go
unnoticed until someone needs the figure.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_script_starts(script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                          text=True, timeout=120, check=False, cwd=BENCH.parent)
    assert done.returncode == 0, done.stderr[-2000:]
