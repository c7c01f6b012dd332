"""``courtguard-collector host isolate|approve|lift|isolations``, run through main(argv)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.events import EnrollRequest
from collector.policy.signing import ensure_signing_key
from collector.settings import CollectorSettings
from collector.store.agents import enroll
from collector.store.audit import AuditFilter, query_audit
from collector.store.database import Database
from tests.collector.conftest import make_token


@pytest.fixture
def enrolled(cli: Any, database_url: str, tmp_path: Path) -> Iterator[tuple[Database, str]]:
    cli("migrate")
    ensure_signing_key(tmp_path / "data")
    db = Database.from_settings(CollectorSettings(data_dir=tmp_path / "data",
                                                  database_url=database_url))
    request = EnrollRequest(token=make_token(db), hostname="ws-1", agent_version="0.1.0")
    yield db, str(enroll(db, request, datetime.now(UTC)).agent_id)
    db.dispose()


def test_isolate_list_and_lift(cli: Any, enrolled: tuple[Database, str]) -> None:
    db, agent_id = enrolled
    code, out, _ = cli("host", "isolate", agent_id, "--minutes", "30", "--reason", "排查外联",
                       "--by", "admin-a")
    assert code == 0 and f"isolation {out.split()[1]} signed" in out
    code, out, _ = cli("host", "isolations")
    assert code == 0 and "isolated" in out and "排查外联" in out and "ws-1" in out
    assert out.splitlines()[0].split()[:4] == ["number", "host", "agent", "ID"]
    code, _, err = cli("host", "isolate", agent_id, "--minutes", "30", "--reason", "再次")
    assert code == 1 and "已有生效中的隔离" in err
    code, out, _ = cli("host", "lift", agent_id, "--by", "admin-b")
    assert code == 0 and "lifted; the lift order is signed" in out
    assert cli("host", "isolations")[1].strip() == "no pending or active isolations"
    actions = [e["action"] for e in query_audit(db, AuditFilter(object_type="host_isolation"), 9)]
    assert actions == ["isolation.lift", "isolation.request"]


def test_bad_minutes_and_unknown_agents_are_errors(
    cli: Any, enrolled: tuple[Database, str]
) -> None:
    _db, agent_id = enrolled
    code, _, err = cli("host", "isolate", agent_id, "--minutes", "0", "--reason", "x")
    assert code == 1 and "1 到 10080 分钟" in err
    code, _, err = cli("host", "isolate", "0f8fad5b-d9cb-469f-a165-70867728950e",
                       "--minutes", "5", "--reason", "x")
    assert code == 1 and "没有该终端" in err
    code, _, err = cli("host", "lift", agent_id)
    assert code == 1 and f"workstation {agent_id} has no pending or active isolation" in err


def test_approval_needs_another_admin(
    cli: Any, enrolled: tuple[Database, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _db, agent_id = enrolled
    monkeypatch.setenv("COURTGUARD_COLLECTOR_ISOLATION_REQUIRES_APPROVAL", "true")
    code, out, _ = cli("host", "isolate", agent_id, "--minutes", "5", "--reason", "x",
                       "--by", "admin-a")
    assert code == 0 and "waiting for another administrator's approval" in out
    isolation_id = out.split("isolation ")[1].split(" ")[0]
    code, _, err = cli("host", "approve", isolation_id, "--by", "admin-a")
    assert code == 1 and "不能批准自己" in err
    code, out, _ = cli("host", "approve", isolation_id, "--by", "admin-b")
    assert code == 0 and f"isolation {isolation_id} signed" in out


def test_a_chinese_locale_reads_the_same_in_chinese(
    cli: Any, enrolled: tuple[Database, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _db, agent_id = enrolled
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    code, out, _ = cli("host", "isolate", agent_id, "--minutes", "30", "--reason", "排查外联",
                       "--by", "admin-a")
    assert code == 0 and "已签发，终端将在下一次上报时执行" in out and "（北京时间）自动解除" in out
    code, out, _ = cli("host", "isolations")
    assert out.splitlines()[0].split()[:4] == ["编号", "主机", "终端", "ID"]
    assert "隔离中" in out.splitlines()[1]
    code, out, _ = cli("host", "lift", agent_id, "--by", "admin-b")
    assert code == 0 and "已解除，解除指令已签发" in out
    assert cli("host", "isolations")[1].strip() == "没有待批准或生效中的隔离"
    assert cli("host", "isolations", "--all")[1].splitlines()[1].split()[3] == "已解除"
