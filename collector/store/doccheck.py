"""Clerks' document checks: each check's history row and each decision on a finding.

A history row holds the document's hash, its pseudonymised file name, the
verdict and counts, never its text. A decision (``not_applicable`` with its
reason, or ``applicable`` to take one back) is appended, never changed, and
written to the audit log in the same transaction; the newest decision per
(document hash, finding key) is the one that holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy import and_, func, insert, select

from collector.store import audit
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.tables import doc_check_decisions, doc_check_history

DECISIONS: Final = ("not_applicable", "applicable")
MAX_REASON: Final = 500


class DecisionError(ValueError):
    """A decision the store refuses (Chinese message for the page)."""


def record_check(db: Database, actor: Actor, row: Mapping[str, Any], duration_ms: float,
                 now: datetime) -> None:
    with db.write() as conn:
        conn.execute(insert(doc_check_history).values(
            username=actor.name[:100], via=actor.via[:16], checked_at=now,
            sha256=row["sha256"], file_name=str(row["file_name"])[:255], size=row["size"],
            verdict=row["verdict"], error=row["error"], findings=row["findings"],
            counts=dict(row["counts"]), duration_ms=duration_ms))


def history(db: Database, username: str, limit: int = 50) -> list[dict[str, Any]]:
    """The user's own checks, newest first."""
    c = doc_check_history.c
    query = (select(doc_check_history).where(c.username == username)
             .order_by(c.id.desc()).limit(limit))
    with db.read() as conn:
        return [{str(k): v for k, v in row._mapping.items()} for row in conn.execute(query)]


def decide(db: Database, actor: Actor, sha256: str, findings: Iterable[Mapping[str, Any]],
           decision: str, reason: str, now: datetime) -> int:
    """Record ``decision`` on each finding (key, rule_id, masked excerpt); audited. Returns
    how many were recorded."""
    reason = reason.strip()
    if decision not in DECISIONS:
        raise DecisionError("未知的处理决定")
    if decision == "not_applicable" and not reason:
        raise DecisionError("请填写不适用的理由")
    if len(reason) > MAX_REASON:
        raise DecisionError(f"理由最多 {MAX_REASON} 字")
    count = 0
    with db.write() as conn:
        for finding in findings:
            key = str(finding["key"])[:200]
            conn.execute(insert(doc_check_decisions).values(
                sha256=sha256, finding_key=key, rule_id=str(finding["rule_id"])[:64],
                excerpt=str(finding["excerpt"])[:200], decision=decision, reason=reason,
                decided_by=actor.name[:100], decided_at=now))
            audit.record(conn, actor, f"document.{decision}", "document", sha256, now,
                         to_value=key, reason=reason or None)
            count += 1
    return count


def current(db: Database, sha256: str) -> dict[str, dict[str, Any]]:
    """Finding key → the newest decision on it, for one document."""
    c = doc_check_decisions.c
    newest = (select(func.max(c.id)).where(c.sha256 == sha256)
              .group_by(c.finding_key).scalar_subquery())
    query = select(doc_check_decisions).where(c.id.in_(newest))
    with db.read() as conn:
        return {row.finding_key: {str(k): v for k, v in row._mapping.items()}
                for row in conn.execute(query)}


def excluded_keys(db: Database, sha256: str) -> list[str]:
    return sorted(k for k, v in current(db, sha256).items() if v["decision"] == "not_applicable")


def list_decisions(db: Database, limit: int = 100, before_id: int | None = None,
                   decided_by: str | None = None) -> list[dict[str, Any]]:
    """Every decision, newest first, for the security team's review."""
    c = doc_check_decisions.c
    conditions: list[Any] = []
    if before_id is not None:
        conditions.append(c.id < before_id)
    if decided_by:
        conditions.append(c.decided_by == decided_by)
    query = (select(doc_check_decisions).where(and_(True, *conditions))
             .order_by(c.id.desc()).limit(limit))
    with db.read() as conn:
        return [{str(k): v for k, v in row._mapping.items()} for row in conn.execute(query)]
