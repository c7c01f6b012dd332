"""``courtguard-collector patrol``: one pass from the command line, on collector.toml's sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.collector.conftest import POLICIES

PHONE = ("北京市朝阳区人民法院\n民事判决书\n(2024)京0105民初2号\n原告赵某，男。\n被告钱某，女。\n"
         "原告赵某与被告钱某买卖合同纠纷一案。\n被告钱某的手机号码13812345678。\n")


def test_patrol_once_from_the_command_line(cli: Any, tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "a.txt").write_text(PHONE)
    config = tmp_path / "collector.toml"
    config.write_text(
        f'policy_dir = "{POLICIES}"\n\n[patrol]\nenabled = true\n\n'
        f'[[patrol.sources]]\nname = "export"\ndirectory = "{export}"\n'
    )
    assert cli("migrate", "--config", str(config))[0] == 0
    code, out, err = cli("patrol", "--config", str(config))
    assert code == 0, err
    assert ("patrol done: listed 1, unchanged 0, downloaded 1, checked 1; new alerts 1"
            in out)
    code, out, _ = cli("patrol", "--config", str(config))
    assert "unchanged 1, downloaded 0" in out and "new alerts 0" in out
    code, _, err = cli("patrol", "--config", str(config), "--source", "nope")
    assert code == 1 and "no source to patrol" in err and "(not found: nope)" in err


def test_patrol_speaks_chinese_in_a_chinese_locale(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "a.txt").write_text(PHONE)
    config = tmp_path / "collector.toml"
    config.write_text(
        f'policy_dir = "{POLICIES}"\n\n[patrol]\nenabled = true\n\n'
        f'[[patrol.sources]]\nname = "export"\ndirectory = "{export}"\n'
    )
    assert cli("migrate", "--config", str(config))[0] == 0
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    code, out, err = cli("patrol", "--config", str(config))
    assert code == 0, err
    assert "巡查完成：列出 1 份，未变 0 份，下载 1 份，审查 1 份；新告警 1 条" in out
    code, _, err = cli("patrol", "--config", str(config), "--source", "nope")
    assert code == 1 and "没有可巡查的来源" in err and "（未找到 nope）" in err


def test_a_source_needs_one_place(cli: Any, tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text('[[patrol.sources]]\nname = "x"\nurl = "https://192.0.2.1/"\n'
                      'directory = "/srv"\n')
    code, _, err = cli("patrol", "--config", str(config))
    assert code == 1 and "patrol source x: give exactly one of url and directory" in err
    assert "Traceback" not in err
