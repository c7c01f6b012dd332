"""``courtguard-collector`` itself: settings, errors, ``python -m collector.cli``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from collector.cli import build_parser


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



def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[argparse.ArgumentParser, str]]:
    """Every subcommand's parser under ``parser``, with the line its parent lists it with."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for listed in action._choices_actions:
                sub = action.choices[listed.dest]
                found += [(sub, listed.help or ""), *_subcommands(sub)]
    return found


def test_every_subcommand_help_says_what_it_does() -> None:
    """``release rollback --help`` opens with what rollback does, as ``release --help`` lists."""
    every = _subcommands(build_parser())
    assert len(every) > 40
    assert [sub.prog for sub, listed in every if not sub.description] == []
    rollback = next(sub for sub, _ in every if sub.prog.endswith(" release rollback"))
    assert "with its previous release again\n" in rollback.format_help()


def test_an_unsupported_database_is_refused_in_the_locale_s_language(
        tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    from collector.cli import main

    args = ["migrate", "--data-dir", str(tmp_path), "--database-url", "bogus://x"]
    assert main(args) == 1
    assert "error: unsupported database 'bogus': use sqlite:///PATH" in capsys.readouterr().err
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert main(args) == 1
    assert "错误：不支持的数据库 'bogus'：请使用 sqlite:///路径" in capsys.readouterr().err
