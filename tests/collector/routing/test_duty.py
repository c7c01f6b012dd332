"""The duty roster: shifts across midnight, weekly turns, leave, overrides, the office's CSV."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.policy.loader import parse_document
from collector.cli import main
from collector.routing import duty
from collector.routing.policy import AlertingPolicy
from collector.store.database import Database

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "policies" / "alerting.yaml"


def policy(**changes: Any) -> AlertingPolicy:
    data = yaml.safe_load(SHIPPED.read_text())
    for key, value in changes.items():
        data["duty"][key] = value
    return AlertingPolicy.model_validate(data)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_night_shift_covers_the_early_hours_of_the_next_day() -> None:
    shipped = policy()
    staff = duty.on_duty(shipped, None, at("2026-10-02T03:00:00+08:00"))
    assert staff is not None
    assert (staff.slot.shift, staff.slot.day) == ("night", date(2026, 10, 1))
    # 2026-10-01 is in week 38 from 2026-01-05: members rotate weekly, 38 % 3 == 2
    assert staff.people == {"on_duty": "wang_qiang", "backup": "zhang_wei", "leader": "chen_jun"}
    described = duty.describe(shipped, staff)
    assert described["day_kind"] == "holiday"
    assert described["key_period"] == "国庆假期重点时期"


def test_next_shift() -> None:
    upcoming = duty.next_on_duty(policy(), None, at("2026-10-02T03:00:00+08:00"))
    assert upcoming is not None
    assert (upcoming.slot.shift, upcoming.slot.day) == ("day", date(2026, 10, 2))
    assert upcoming.slot.starts_at == at("2026-10-02T08:30:00+08:00")


def test_leave_skips_to_the_next_member_and_overrides_win() -> None:
    on_leave = policy(leave=[{"person": "wang_qiang", "start": "2026-09-28", "end": "2026-10-04"}])
    staff = duty.on_duty(on_leave, None, at("2026-10-02T03:00:00+08:00"))
    assert staff is not None and staff.person("on_duty") == "zhang_wei"
    swapped = policy(overrides=[{"date": "2026-10-01", "shift": "night", "position": "on_duty",
                                 "person": "zhao_min", "comment": "换班"}])
    staff = duty.on_duty(swapped, None, at("2026-10-02T03:00:00+08:00"))
    assert staff is not None
    assert (staff.person("on_duty"), staff.sources["on_duty"]) == ("zhao_min", "override")


def test_unknown_people_and_shifts_are_lint_errors(tmp_path: Path) -> None:
    data = yaml.safe_load(SHIPPED.read_text())
    data["duty"]["rotations"][0]["members"].append("nobody")
    data["routes"][0]["receiver"] = "missing-receiver"
    data["routes"][1]["active_in"] = ["no-such-window"]
    path = tmp_path / "alerting.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(Exception) as raised:
        parse_document(path, path.read_bytes())
    text = str(raised.value)
    assert "unknown person 'nobody'" in text
    assert "unknown receiver 'missing-receiver'" in text
    assert "unknown window 'no-such-window'" in text


def test_policy_check_reports_lint_problems_at_their_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SHIPPED.read_text().replace("receiver: audit-mailbox", "receiver: audit-mailbx")
    (tmp_path / "alerting.yaml").write_text(text)
    assert main(["policy", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "audit-mailbx" in t)
    assert f"alerting.yaml:{line}:" in err and "unknown receiver 'audit-mailbx'" in err


SHEET = """日期,班次,岗位,姓名
2026-10-01,夜班,值班员,李娜
2026-10-01,夜班,值班领导,陈军（信息技术处处长）
2026/10/02,day,backup,zhao_min
"""


def test_csv_import_wins_over_the_rotation(db: Database) -> None:
    shipped = policy()
    rows = duty.parse_roster_csv(SHEET.encode("gb18030"), shipped)
    assert len(rows) == 3
    duty.import_rows(db, rows, "sheet.csv", "duty-office", datetime.now(UTC))
    staff = duty.on_duty(shipped, db, at("2026-10-02T03:00:00+08:00"))
    assert staff is not None
    assert staff.person("on_duty") == "li_na" and staff.sources["on_duty"] == "imported"
    assert staff.person("backup") == "zhang_wei" and staff.sources["backup"] == "rotation"
    # importing the same shift again replaces, never duplicates
    again = duty.parse_roster_csv("日期,班次,岗位,姓名\n2026-10-01,夜班,值班员,赵敏\n".encode(),
                                  shipped)
    duty.import_rows(db, again, "fix.csv", "duty-office", datetime.now(UTC))
    staff = duty.on_duty(shipped, db, at("2026-10-02T03:00:00+08:00"))
    assert staff is not None and staff.person("on_duty") == "zhao_min"


def test_csv_errors_name_every_bad_line(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = "日期,班次,岗位,姓名\n2026-13-01,夜班,值班员,李娜\n2026-10-01,晚班,值班员,李四\n"
    with pytest.raises(duty.DutyImportError) as raised:
        duty.parse_roster_csv(bad.encode(), policy())
    text = str(raised.value)
    assert text.startswith("the sheet was not imported:\nline 2: date '2026-13-01' is not")
    assert "line 3: unknown shift '晚班' (known: " in text
    assert "line 3: unknown person '李四'" in text
    with pytest.raises(duty.DutyImportError, match="the header has no “姓名/人员/person” column"):
        duty.parse_roster_csv(b"date,shift,position,who\n2026-10-01,x\n", policy())
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    with pytest.raises(duty.DutyImportError) as raised:
        duty.parse_roster_csv(bad.encode(), policy())
    text = str(raised.value)
    assert "第 2 行：日期" in text
    assert "第 3 行：未知班次 '晚班'" in text and "第 3 行：未知人员 '李四'" in text
    with pytest.raises(duty.DutyImportError, match="表头缺少"):
        duty.parse_roster_csv(b"date,who\n2026-10-01,x\n", policy())


def test_duty_cli_import_now_next(settings: Any, db: Database, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("DATA_DIR", str(settings.data_dir)),
                        ("DATABASE_URL", settings.database_url),
                        ("POLICY_DIR", str(REPO / "policies"))):
        monkeypatch.setenv(f"COURTGUARD_COLLECTOR_{name}", value)
    sheet = tmp_path / "值班表.csv"
    sheet.write_text(SHEET, encoding="utf-8-sig")
    assert main(["duty", "import", str(sheet), "--by", "值班室"]) == 0
    assert "imported duty roster 值班表.csv:" in capsys.readouterr().out
    assert main(["duty", "now", "--at", "2026-10-02T03:00:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("on duty now: 2026-10-01 夜班 (")
    assert "李娜" in out and "imported" in out
    assert "Beijing time, key period: 国庆假期重点时期)" in out
    assert out.splitlines()[1].split() == ["position", "name", "mobile", "source"]
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert main(["duty", "now", "--at", "2026-10-02T03:00:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("当前值班：2026-10-01 夜班（")
    assert "北京时间，重点时期：国庆假期重点时期）" in out
    assert out.splitlines()[1].split() == ["岗位", "姓名", "手机", "来源"]
    assert main(["duty", "import", str(sheet), "--by", "值班室"]) == 0
    assert "已导入值班表 值班表.csv：" in capsys.readouterr().out
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert main(["duty", "next", "--at", "2026-10-02T03:00:00+08:00", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["shift"] == "day" and described["positions"]["backup"]["id"] == "zhao_min"
    bad = tmp_path / "bad.csv"
    bad.write_text("日期,班次,岗位,姓名\n2026-10-01,夜班,值班员,李四\n")
    assert main(["duty", "import", str(bad)]) == 1
    assert "line 2: unknown person '李四'" in capsys.readouterr().err
