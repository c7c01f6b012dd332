"""``courtguard-collector user ...`` and ``silence ...``: English, or Chinese under zh_CN."""

from __future__ import annotations

from typing import Any

import pytest

from collector.cli.table import display_width


def _columns(line: str, cells: list[str]) -> list[int]:
    return [display_width(line[:line.index(cell)]) for cell in cells]


def test_user_commands_follow_the_locale(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cli("migrate")
    code, out, err = cli("user", "create", "zhang", "--role", "admin", "--display-name", "张伟",
                         "--generate")
    assert code == 0, err
    assert out.startswith("created user zhang (role admin)\ninitial password (shown once): ")
    code, out, _ = cli("user", "disable", "zhang")
    assert out.strip() == "user zhang disabled (their sessions ended)"
    lines = cli("user", "list")[1].splitlines()
    assert lines[0].split()[:3] == ["username", "display", "name"]
    assert lines[1].split()[:4] == ["zhang", "张伟", "admin", "disabled"] and "local" in lines[1]

    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    code, out, _ = cli("user", "create", "li", "--role", "reviewer", "--generate")
    assert code == 0 and out.startswith("已创建用户 li（角色 reviewer）\n初始密码（仅显示一次）: ")
    assert cli("user", "enable", "zhang")[1].strip() == "用户 zhang 已启用"
    assert cli("user", "disable", "li")[1].strip() == "用户 li 已停用（其会话已结束）"
    code, out, _ = cli("user", "passwd", "li", "--generate")
    assert out.startswith("已为用户 li 设置新密码，其现有会话已结束\n新密码（仅显示一次）: ")
    header, *rows = cli("user", "list")[1].splitlines()
    assert header.split() == ["用户名", "显示名", "角色", "状态", "锁定至", "最近登录", "来源"]
    assert rows[0].split()[3] == "停用" and rows[1].split()[3] == "启用"
    # the Chinese display name and the status column line up under their headers
    assert _columns(header, ["角色", "状态"]) == _columns(rows[1], ["admin", "启用"])


def test_silence_commands_follow_the_locale(
    cli: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli("migrate")
    code, out, err = cli("silence", "add", "--match", "host=ws-it-*", "--duration", "4h",
                         "--comment", "机房割接", "--by", "zhang")
    assert code == 0, err
    assert out.startswith("created silence ") and out.rstrip().endswith("(Beijing time)")
    silence_id = out.split()[2].rstrip(",")
    header, row = cli("silence", "list")[1].splitlines()
    assert header.split() == ["ID", "matchers", "ends", "(Beijing", "time)", "state",
                              "created", "by", "comment"]
    assert row.split()[4:] == ["active", "zhang", "机房割接"]
    with pytest.raises(SystemExit) as exited:
        cli("silence", "add", "--match", "host", "--duration", "4h", "--comment", "x")
    assert exited.value.code == 2 and "'host' is not LABEL=VALUE" in capsys.readouterr().err

    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    with pytest.raises(SystemExit):
        cli("silence", "add", "--match", "host=a", "--duration", "4x", "--comment", "x")
    err = capsys.readouterr().err
    assert "错误：" in err and "'4x' 不是 30m、4h、2d 这样的时长" in err
    assert cli("silence", "expire", silence_id)[1].strip() == f"静默 {silence_id} 已提前结束"
    header, row = cli("silence", "list", "--all")[1].splitlines()
    assert header.split() == ["ID", "匹配", "结束（北京时间）", "状态", "创建人", "说明"]
    assert row.split()[4] == "已结束"
    assert _columns(header, ["状态", "创建人"]) == _columns(row, ["已结束", "zhang"])


def test_refusals_of_the_store_follow_the_locale(
        cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a command line refuses because the store lacks it, and a password prompt with no
    terminal to ask on, said in the locale's language (and never a traceback)."""
    import argparse

    from collector.cli.policy import group_name

    assert cli("init")[0] == 0
    code, _, err = cli("user", "create", "wang", "--role", "admin")
    assert code == 1 and err.startswith("error: there is no terminal to ask for the password")
    assert "--password-stdin" in err and "Traceback" not in err
    assert cli("silence", "expire", "99")[2] == "error: no silence 99; see `silence list`\n"
    assert "error: no enrollment token with id 7; see" in cli("token", "revoke", "7")[2]
    assert "error: no agent with id ws-9; see" in cli("agent", "revoke", "ws-9")[2]
    assert "error: no policy version 5; see" in cli("policy", "promote", "5")[2]
    with pytest.raises(argparse.ArgumentTypeError, match="is not a group name"):
        group_name("bad group")

    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    code, _, err = cli("user", "create", "wang", "--role", "admin")
    assert code == 1 and err.startswith("错误：没有可用于输入密码的终端")
    refused = cli("silence", "expire", "99")[2]
    assert refused == "错误：没有编号为 99 的静默；用 `silence list` 查看\n"
    assert "没有编号为 7 的注册令牌" in cli("token", "revoke", "7")[2]
    assert "没有编号为 ws-9 的代理" in cli("agent", "revoke", "ws-9")[2]
    assert "没有版本为 5 的策略" in cli("policy", "promote", "5")[2]
    with pytest.raises(argparse.ArgumentTypeError, match="不是有效的分组名"):
        group_name("bad group")
