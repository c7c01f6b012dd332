"""The ``cli`` fixture: courtguard-collector commands against a temporary data dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collector.cli import main


@pytest.fixture
def cli(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> Any:
    data_dir = tmp_path / "data"

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--data-dir", str(data_dir), "--database-url", database_url])
        out, err = capsys.readouterr()
        return code, out, err

    return run
