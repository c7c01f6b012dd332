"""``courtguard-collector policy ...``, run through main(argv)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.events import EnrollRequest
from collector.cli import main
from collector.settings import CollectorSettings
from collector.store.agents import enroll
from collector.store.database import Database
from tests.collector.conftest import POLICIES, make_token


def _enroll_into_canary(cli: Any, tmp_path: Path, database_url: str) -> str:
    """One agent in group canary, so policy status has a group line to show."""
    db = Database.from_settings(CollectorSettings(data_dir=tmp_path / "data",
                                                  database_url=database_url))
    request = EnrollRequest(token=make_token(db), hostname="ws-1", agent_version="0.1.0")
    agent_id = str(enroll(db, request, datetime.now(UTC)).agent_id)
    db.dispose()
    assert cli("agent", "group", agent_id, "canary")[0] == 0
    return agent_id


def test_policy_check_exits_non_zero_and_prints_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """policy check: the shipped policies pass with their cases; a broken file fails with lines."""
    assert main(["policy", "check", str(POLICIES), "--cases"]) == 0
    assert "rules checked, no problems, all" in capsys.readouterr().out
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "agent.yaml").write_text(
        (POLICIES / "agent.yaml").read_text().replace("match: {missed_heartbeats: 3}",
                                                      "match: {missed_heartbeat: 3}")
    )
    assert main(["policy", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad / 'agent.yaml'}:16: rules[0](agent.silent).match.missed_heartbeat" in err
    assert "missed_heartbeats" in err


def test_publish_promote_rollback_status(cli: Any, tmp_path: Path, database_url: str) -> None:
    """The rollout commands number versions, keep notes and authors, and report them."""
    cli("init")
    _enroll_into_canary(cli, tmp_path, database_url)
    code, out, err = cli("policy", "publish", str(POLICIES), "--group", "canary", "--note", "试点",
                         "--author", "zhang")
    assert code == 0, err
    assert "policy version 1 signed and published (group canary, publish" in out
    assert cli("policy", "promote", "1")[0] == 0
    code, _, err = cli("policy", "promote", "2")
    assert code == 1 and "version 2 already targets all groups" in err
    code, out, _ = cli("policy", "rollback", "1", "--note", "撤回")
    assert code == 0 and "policy version 3" in out and "(all groups, rollback" in out
    code, out, _ = cli("policy", "status")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["version", "target", "group", "action"]
    assert lines[1].split()[:3] == ["3", "all", "rollback"] and "撤回" in lines[1]
    assert lines[3].split()[:3] == ["1", "canary", "publish"] and "zhang" in lines[3]
    assert lines[4] == "signature algorithm: Ed25519"
    assert "group canary: 1 agents, should run version 3, not converged (" in out
    code, out, _ = cli("policy", "status", "--json")
    assert code == 0 and '"source_version": 1' in out


def test_policy_commands_speak_chinese_in_a_chinese_locale(
    cli: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, database_url: str
) -> None:
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert main(["policy", "check", str(POLICIES), "--cases"]) == 0
    assert "条规则检查通过，" in capsys.readouterr().out
    cli("init")
    _enroll_into_canary(cli, tmp_path, database_url)
    code, out, err = cli("policy", "publish", str(POLICIES), "--group", "canary")
    assert code == 0, err
    assert "策略版本 1 已签名发布（分组 canary，publish，sha256 " in out
    assert "）；代理将在下一次拉取（或下一次上报）时获取" in out
    assert cli("policy", "promote", "1")[0] == 0
    code, _, err = cli("policy", "promote", "2")
    assert code == 1 and "版本 2 已面向全部分组，无需推广" in err
    code, out, _ = cli("policy", "status")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["版本", "目标分组", "操作"]
    assert lines[1].split()[:3] == ["2", "全部", "promote"] and "通过" in lines[1]
    assert lines[3] == "签名算法：Ed25519"
    assert "分组 canary：代理 1 个，应运行版本 2，未收敛（" in out


def test_publish_refuses_a_bad_directory_and_missing_key(cli: Any, tmp_path: Path) -> None:
    """Nothing is published from a directory with errors, nor without a signing key."""
    cli("migrate")
    assert cli("policy", "publish", str(POLICIES))[2].startswith("error:")
    cli("init")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli("policy", "publish", str(empty))
    assert code == 1 and "没有 *.yaml" in err
    collector_only = tmp_path / "collector-only"
    collector_only.mkdir()
    shutil.copy(POLICIES / "alerting.yaml", collector_only)
    code, _, err = cli("policy", "publish", str(collector_only))
    assert code == 1, err
    assert "the policy holds only kinds the collector reads (alerting) and none an agent" in err
