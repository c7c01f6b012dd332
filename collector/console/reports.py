"""Daily and monthly summaries: what happened, what was done about it, how fast.

Periods are calendar days and months in Asia/Shanghai. Event figures count
events of severity ``low`` and above (findings, not heartbeats), by the family
their kind starts with (``outreach``, ``account``, ``document``, ``agent``).
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from sqlalchemy import func, literal_column, select

from agent.calendar_cn import SHANGHAI
from agent.events import Severity
from collector.alerts.service import STATUSES
from collector.store.database import Database
from collector.store.tables import alerts, events

FAMILIES: Final = ("outreach", "account", "document", "agent")
TOP: Final = 10
_FINDING: Final = Severity.LOW.rank


@dataclass(frozen=True)
class Period:
    kind: str  # day | month
    first_day: date
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return self.first_day.strftime("%Y-%m-%d" if self.kind == "day" else "%Y-%m")

    @property
    def days(self) -> list[date]:
        count = (self.end - self.start).days
        return [self.first_day + timedelta(days=i) for i in range(count)]


def period(kind: str, day: date) -> Period:
    """The Shanghai calendar day or month holding ``day``."""
    if kind == "month":
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
    elif kind == "day":
        first, following = day, day + timedelta(days=1)
    else:
        raise ValueError(f"period {kind!r} is not day or month")
    return Period(kind, first, datetime.combine(first, time(), SHANGHAI),
                  datetime.combine(following, time(), SHANGHAI))


def _local_day(dialect: str) -> Any:
    if dialect == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", events.c.time), "YYYY-MM-DD")
    # UTC text on SQLite: shift by Shanghai's fixed +8 (no daylight saving since 1991).
    return func.strftime("%Y-%m-%d", events.c.time, literal_column("'+8 hours'"))


def summary(db: Database, when: Period) -> dict[str, Any]:
    """Every figure of the report for ``when``."""
    e, a = events.c, alerts.c
    in_period = (e.time >= when.start, e.time < when.end, e.severity >= _FINDING)
    with db.read() as conn:
        day = _local_day(db.dialect).label("day")
        per_kind_day = conn.execute(
            select(day, e.kind, func.count()).where(*in_period).group_by(day, e.kind)
        ).all()
        top_hosts = conn.execute(
            select(e.host, func.count().label("n")).where(*in_period)
            .group_by(e.host).order_by(func.count().desc(), e.host).limit(TOP)
        ).all()
        top_rules = conn.execute(
            select(func.coalesce(e.rule_id, e.kind).label("rule"), func.count().label("n"))
            .where(*in_period).group_by(func.coalesce(e.rule_id, e.kind))
            .order_by(func.count().desc(), func.coalesce(e.rule_id, e.kind)).limit(TOP)
        ).all()
        documents = conn.execute(
            select(func.count(func.distinct(e.evidence["sha256"].as_string())))
            .where(*in_period, e.kind.like("document.%"))
        ).scalar_one()
        alert_rows = conn.execute(
            select(a.kind, a.status, a.created_at, a.acknowledged_at)
            .where(a.created_at >= when.start, a.created_at < when.end)
        ).all()
    by_family_day: dict[str, dict[str, int]] = {f: {} for f in FAMILIES}
    by_kind: dict[str, int] = {}
    for local_day, kind, n in per_kind_day:
        family = kind.split(".", 1)[0]
        by_family_day.setdefault(family, {})
        by_family_day[family][local_day] = by_family_day[family].get(local_day, 0) + n
        by_kind[kind] = by_kind.get(kind, 0) + n
    family_totals = {f: sum(days.values()) for f, days in by_family_day.items()}
    by_status = dict.fromkeys(STATUSES, 0)
    waits: list[float] = []
    outreach_incidents = 0
    for kind, status, created, acknowledged in alert_rows:
        by_status[status] += 1
        outreach_incidents += kind.startswith("outreach.")
        if acknowledged is not None:
            waits.append((acknowledged - created).total_seconds() / 60)
    return {
        "period": when.kind, "label": when.label,
        "start": when.start.isoformat(), "end": when.end.isoformat(),
        "outreach_incidents": outreach_incidents,
        "outreach_events": family_totals.get("outreach", 0),
        "account_findings": family_totals.get("account", 0),
        "document_findings": family_totals.get("document", 0),
        "documents_with_findings": documents,
        "documents_blocked": by_kind.get("document.block", 0),
        "alerts_opened": len(alert_rows),
        "alerts_by_status": by_status,
        "acknowledged": len(waits),
        "ack_minutes_median": round(statistics.median(waits), 1) if waits else None,
        "ack_minutes_p90": round(_p90(waits), 1) if waits else None,
        "events_by_family": family_totals,
        "events_per_day": {
            f: [by_family_day.get(f, {}).get(d.isoformat(), 0) for d in when.days]
            for f in sorted(by_family_day)
        },
        "days": [d.isoformat() for d in when.days],
        "top_hosts": [{"host": h, "events": n} for h, n in top_hosts],
        "top_rules": [{"rule": r, "events": n} for r, n in top_rules],
    }


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def to_csv(report: dict[str, Any]) -> str:
    """The report as ``section,item,value`` rows (UTF-8 with BOM, so spreadsheet apps read it)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "item", "value"])
    for key in ("period", "label", "start", "end", "outreach_incidents", "outreach_events",
                "account_findings", "document_findings", "documents_with_findings",
                "documents_blocked", "alerts_opened", "acknowledged", "ack_minutes_median",
                "ack_minutes_p90"):
        writer.writerow(["summary", key, "" if report[key] is None else report[key]])
    for status, n in report["alerts_by_status"].items():
        writer.writerow(["alerts_by_status", status, n])
    for family, n in report["events_by_family"].items():
        writer.writerow(["events_by_family", family, n])
    for family, counts in report["events_per_day"].items():
        for day, n in zip(report["days"], counts, strict=True):
            writer.writerow([f"events_per_day:{family}", day, n])
    for row in report["top_hosts"]:
        writer.writerow(["top_hosts", _cell(row["host"]), row["events"]])
    for row in report["top_rules"]:
        writer.writerow(["top_rules", _cell(row["rule"]), row["events"]])
    return "\ufeff" + out.getvalue()


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas in data that came from workstations."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
