"""The command lines' gettext catalogues: complete, compiled, and chosen by the locale."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.i18n import (
    Catalogue,
    all_catalogues,
    argparse_strings,
    cli_language,
    compile_po,
    marked_strings,
    parse_po,
)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PLACEHOLDER = re.compile(r"\{[^{}]*\}|%\([a-z_]+\)[rsd]|%[rsd]")


def _catalogue(domain: str) -> Catalogue:
    return next(c for c in all_catalogues() if c.domain == domain)


def _marked(package: str) -> set[str]:
    """Every string a module of the package marks with its catalogue's ``_``."""
    found: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        if f"from {package}.messages import" in source:
            found |= marked_strings(source)
    return found


@pytest.mark.parametrize("package", ["agent", "collector"])
def test_every_marked_string_has_a_chinese_translation(package: str) -> None:
    catalogue = _catalogue(f"courtguard-{package}")
    entries = parse_po(catalogue.po_path().read_text(encoding="utf-8"))
    wanted = _marked(package) | argparse_strings()
    assert len(wanted) > 50
    missing = sorted(m for m in wanted if not entries.get(m))
    assert not missing, f"add to {catalogue.po_path()}: {missing}"
    stale = sorted(set(entries) - wanted - {""})
    assert not stale, f"no longer marked anywhere, remove from {catalogue.po_path()}: {stale}"
    for message in wanted:
        assert sorted(PLACEHOLDER.findall(entries[message])) == sorted(
            PLACEHOLDER.findall(message)), (message, entries[message])
        # Chinese characters, or at least Chinese punctuation (``courtguard-agent：{message}``).
        assert re.search(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", entries[message]), (
            message, "is not Chinese")


@pytest.mark.parametrize("domain", ["courtguard-agent", "courtguard-collector"])
def test_committed_mo_is_the_compiled_po(domain: str) -> None:
    po = _catalogue(domain).po_path()
    assert po.with_suffix(".mo").read_bytes() == compile_po(po.read_text(encoding="utf-8")), (
        f"{po.with_suffix('.mo')} is stale: run `python -m agent.i18n`")


@pytest.mark.parametrize(("environ", "language"), [
    ({"LANG": "zh_CN.UTF-8"}, "zh_CN"),
    ({"LANG": "zh_SG.UTF-8"}, "zh_CN"),
    ({"LANG": "zh"}, "zh_CN"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({}, "en"),
    ({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh_CN"),
    ({"LC_ALL": "", "LANG": "zh_CN.GB18030"}, "zh_CN"),
])
def test_language_follows_the_posix_locale_order(environ: dict[str, str], language: str) -> None:
    assert cli_language(environ) == language


def _run(command: str, *args: str, lang: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COURTGUARD_", "LC_", "LANGUAGE"))}
    env["LANG"] = lang
    return subprocess.run([str(BIN / command), *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


@pytest.mark.parametrize("command", ["courtguard-agent", "courtguard-collector"])
def test_help_and_errors_speak_the_locale(command: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.toml")
    subcommand = "status" if command == "courtguard-agent" else "migrate"
    chinese_help = _run(command, "--help", lang="zh_CN.UTF-8")
    english_help = _run(command, "--help", lang="C.UTF-8")
    assert chinese_help.returncode == english_help.returncode == 0
    assert chinese_help.stdout.startswith("用法：") and "显示本帮助并退出" in chinese_help.stdout
    assert english_help.stdout.startswith("usage: ") and "show this help" in english_help.stdout
    assert not re.search(r"[\u4e00-\u9fff]", english_help.stdout.replace("一键隔离", "")
                         .replace("已公开文书巡查", "").replace("日期,班次,岗位,姓名", "")
                         .replace("国密", ""))

    chinese = _run(command, subcommand, "--config", missing, lang="zh_CN.UTF-8")
    english = _run(command, subcommand, "--config", missing, lang="C.UTF-8")
    assert chinese.returncode == english.returncode != 0
    assert f"配置文件 {missing} 不存在" in chinese.stderr, chinese.stderr
    assert f"config file {missing} does not exist" in english.stderr, english.stderr
    assert "Traceback" not in chinese.stderr + english.stderr

    usage = _run(command, "no-such-command", lang="zh_CN.UTF-8")
    assert usage.returncode == 2, usage.stderr
    assert "错误：" in usage.stderr and "无效的选项" in usage.stderr, usage.stderr


def test_scan_report_words_are_the_shared_labels_in_chinese(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``scan`` says a verdict or an action in Chinese as the events and the console do."""
    from agent.detectors.documents.checker import messages
    from agent.detectors.documents.checker.fix import NOT_APPLIED
    from agent.detectors.documents.checker.scanner import ACTION_LABELS, VERDICT_LABELS
    from agent.messages import _

    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert {k: _(v) for k, v in messages.VERDICT.items()} == VERDICT_LABELS
    assert {k: _(v) for k, v in messages.ACTION.items()} == ACTION_LABELS
    assert {k: _(v) for k, v in messages.UNCHANGED.items()} == NOT_APPLIED
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert _(messages.VERDICT["publishable"]) == "publishable"
