"""Clerks' check history and decisions in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.store import audit
from collector.store import doccheck as store
from collector.store.audit import Actor
from collector.store.database import Database

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
SHA = "ab" * 32
PHONE = {"key": "documents.mobile-phone:body:82:93", "rule_id": "documents.mobile-phone",
         "excerpt": "1××××××××××"}
NAME = {"key": "documents.party-name:body:10:13", "rule_id": "documents.party-name",
        "excerpt": "王某某"}


def test_history_is_per_user_newest_first(db: Database) -> None:
    clerk, other = Actor("shuji"), Actor("shuji2")
    for n, actor in enumerate((clerk, other, clerk)):
        store.record_check(db, actor, {
            "sha256": f"{n:064x}", "file_name": f"王某案{n}.docx", "size": 100 + n,
            "verdict": "needs_redaction", "error": None, "findings": 2,
            "counts": {"pseudonymize": 1, "redact": 1}}, 12.5, NOW + timedelta(minutes=n))
    mine = store.history(db, "shuji")
    assert [row["file_name"] for row in mine] == ["王某案2.docx", "王某案0.docx"]
    assert mine[0]["counts"] == {"pseudonymize": 1, "redact": 1}
    assert mine[0]["checked_at"] == NOW + timedelta(minutes=2)
    assert [row["file_name"] for row in store.history(db, "shuji2")] == ["王某案1.docx"]


def test_decisions_newest_holds_and_each_is_audited(db: Database) -> None:
    clerk = Actor("shuji", client_address="127.0.0.1")
    assert store.decide(db, clerk, SHA, [PHONE, NAME], "not_applicable", " 法院公开电话 ",
                        NOW) == 2
    assert store.excluded_keys(db, SHA) == sorted([PHONE["key"], NAME["key"]])
    store.decide(db, clerk, SHA, [NAME], "applicable", "", NOW + timedelta(minutes=1))
    assert store.excluded_keys(db, SHA) == [PHONE["key"]]
    assert store.excluded_keys(db, "cd" * 32) == []
    current = store.current(db, SHA)
    assert current[PHONE["key"]]["reason"] == "法院公开电话"
    assert current[NAME["key"]]["decision"] == "applicable"
    listed = store.list_decisions(db)
    assert [d["decision"] for d in listed] == ["applicable", "not_applicable", "not_applicable"]
    assert store.list_decisions(db, decided_by="nobody") == []
    assert len(store.list_decisions(db, before_id=listed[0]["id"])) == 2
    entries = audit.query_audit(db, audit.AuditFilter(object_type="document"), 10)
    assert [e["action"] for e in entries] == ["document.applicable", "document.not_applicable",
                                             "document.not_applicable"]
    assert entries[-1]["object_id"] == SHA and entries[-1]["actor"] == "shuji"
    assert entries[-1]["client_address"] == "127.0.0.1"


@pytest.mark.parametrize("decision,reason,message", [
    ("not_applicable", "   ", "请填写不适用的理由"),
    ("maybe", "x", "未知的处理决定"),
    ("not_applicable", "长" * 501, "理由最多 500 字"),
])
def test_refused_decisions_store_nothing(db: Database, decision: str, reason: str,
                                         message: str) -> None:
    with pytest.raises(store.DecisionError, match=message):
        store.decide(db, Actor("shuji"), SHA, [PHONE], decision, reason, NOW)
    assert store.list_decisions(db) == []
    assert audit.query_audit(db, audit.AuditFilter(object_type="document"), 10) == []
