"""The overview (安全态势总览): each pillar's figures today and over 7 and 30 days, at a glance.

A pillar is the family an event kind starts with (``outreach`` 违规外联,
``account`` 外包账号, ``document`` 裁判文书). Event figures count findings
(severity ``low`` and above); alert figures come from the alerts table. Every
figure is aggregated in SQL over indexed columns: events by
``ix_events_time_id`` over the window, open alerts by
``ix_alerts_status_last_seen_id``, alerts opened in a window by
``ix_alerts_last_seen_id`` (an alert opened in the window was last seen in it
too). Only alerts closed in a window are counted over the whole alerts table,
which holds far fewer rows than events. docs/console.md gives the cost on a
large store.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from sqlalchemy import func, select

from agent.calendar_cn import SHANGHAI, WorkCalendar
from agent.events import Severity
from collector.alerts.service import STATUSES
from collector.console.reports import _local_day
from collector.routing import duty
from collector.routing.policy import AlertingPolicy
from collector.store.database import Database
from collector.store.tables import alerts, events

PILLARS: Final = ("outreach", "account", "document")
#: (key, days): today is the Shanghai calendar day so far; the others end today.
WINDOWS: Final = (("today", 1), ("7d", 7), ("30d", 30))
WINDOW_KEYS: Final = tuple(key for key, _ in WINDOWS)
TREND_DAYS: Final = 30
TOP: Final = 8
#: Top hosts, accounts and rules are over this window.
TOP_WINDOW_DAYS: Final = 7
LATEST: Final = 10
_FINDING: Final = Severity.LOW.rank
_OPEN: Final = tuple(s for s in STATUSES if s != "closed")
SEVERITY_NAMES: Final = tuple(s.value for s in Severity if s.rank >= _FINDING)


def pillar_of(kind: str) -> str | None:
    family = kind.split(".", 1)[0]
    return family if family in PILLARS else None


def window_starts(today: date) -> dict[str, datetime]:
    return {key: datetime.combine(today - timedelta(days=days - 1), time(), SHANGHAI)
            for key, days in WINDOWS}


def _median_minutes(waits: list[float]) -> float | None:
    return round(statistics.median(waits), 1) if waits else None


def figures(db: Database, now: datetime, keys: Sequence[str] = WINDOW_KEYS,
            trend: bool = True) -> dict[str, Any]:
    """Per pillar and window in ``keys``: findings, alerts opened and closed, the median
    minutes to acknowledge; per pillar the open alerts by severity and, with ``trend``,
    findings per day over ``TREND_DAYS``.

    The live part of the overview asks for today alone (a day of events); the
    7 and 30 day windows and the trend are the slow part, computed less often.
    """
    today = now.astimezone(SHANGHAI).date()
    starts = {key: start for key, start in window_starts(today).items() if key in keys}
    if trend:
        starts.setdefault("trend", window_starts(today)["30d"])
    first = min(starts.values())
    span = (today - first.date()).days + 1
    days = [(today - timedelta(days=span - 1 - i)).isoformat() for i in range(span)]
    e, a = events.c, alerts.c
    with db.read() as conn:
        day = _local_day(db.dialect).label("day")
        per_day = conn.execute(
            select(day, e.kind, func.count())
            .where(e.time >= first, e.time <= now, e.severity >= _FINDING)
            .group_by(day, e.kind)
        ).all()
        opened = conn.execute(
            select(a.kind, a.created_at, a.acknowledged_at)
            .where(a.last_seen >= first, a.created_at >= first)
        ).all()
        closed = conn.execute(
            select(a.kind, a.closed_at).where(a.closed_at >= first)
        ).all()
        open_now = conn.execute(
            select(a.kind, a.severity, func.count())
            .where(a.status.in_(_OPEN)).group_by(a.kind, a.severity)
        ).all()
    counts = {p: dict.fromkeys(days, 0) for p in PILLARS}
    for local_day, kind, n in per_day:
        pillar = pillar_of(kind)
        if pillar is not None and local_day in counts[pillar]:
            counts[pillar][local_day] += n
    window_days = {key: {d for d in days if d >= start.date().isoformat()}
                   for key, start in starts.items()}
    result: dict[str, Any] = {}
    for pillar in PILLARS:
        result[pillar] = {
            "windows": {key: {
                "findings": sum(n for d, n in counts[pillar].items() if d in window_days[key]),
                "opened": 0, "closed": 0, "ack_median_min": None, "_waits": []}
                for key in keys},
            "open": dict.fromkeys(SEVERITY_NAMES, 0),
        }
        if trend:
            result[pillar]["trend"] = [counts[pillar][d] for d in days[-TREND_DAYS:]]
    for kind, created, acknowledged in opened:
        pillar = pillar_of(kind)
        if pillar is None:
            continue
        for key in keys:
            if created >= starts[key]:
                window = result[pillar]["windows"][key]
                window["opened"] += 1
                if acknowledged is not None:
                    window["_waits"].append((acknowledged - created).total_seconds() / 60)
    for kind, closed_at in closed:
        pillar = pillar_of(kind)
        if pillar is None:
            continue
        for key in keys:
            if closed_at >= starts[key]:
                result[pillar]["windows"][key]["closed"] += 1
    for kind, severity, n in open_now:
        pillar = pillar_of(kind)
        if pillar is not None and severity >= _FINDING:
            result[pillar]["open"][Severity.from_rank(severity).value] += n
    for pillar in PILLARS:
        for window in result[pillar]["windows"].values():
            window["ack_median_min"] = _median_minutes(window.pop("_waits"))
    return {"pillars": result, "days": days[-TREND_DAYS:] if trend else []}


def merge(slow: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """The slow figures (7 and 30 days, trend) with the live ones (today, open) laid over."""
    pillars = {}
    for pillar in PILLARS:
        pillars[pillar] = {
            **slow["pillars"][pillar],
            "windows": {**slow["pillars"][pillar]["windows"],
                        **live["pillars"][pillar]["windows"]},
            "open": live["pillars"][pillar]["open"],
        }
    return {"pillars": pillars, "days": slow["days"]}


def top_lists(db: Database, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """The hosts, accounts and rules with the most findings over ``TOP_WINDOW_DAYS``."""
    today = now.astimezone(SHANGHAI).date()
    since = datetime.combine(today - timedelta(days=TOP_WINDOW_DAYS - 1), time(), SHANGHAI)
    e = events.c
    in_window = (e.time >= since, e.time <= now, e.severity >= _FINDING)
    n = func.count().label("n")
    rule = func.coalesce(e.rule_id, e.kind).label("rule")
    with db.read() as conn:
        hosts = conn.execute(
            select(e.agent_id, e.host, n).where(*in_window).group_by(e.agent_id, e.host)
            .order_by(n.desc(), e.host).limit(TOP)).all()
        accounts = conn.execute(
            select(e.account, n).where(*in_window, e.account.is_not(None))
            .group_by(e.account).order_by(n.desc(), e.account).limit(TOP)).all()
        rules = conn.execute(
            select(rule, n).where(*in_window).group_by(rule).order_by(n.desc(), rule)
            .limit(TOP)).all()
    return {
        "hosts": [{"agent_id": r.agent_id, "host": r.host, "events": r.n} for r in hosts],
        "accounts": [{"account": r.account, "events": r.n} for r in accounts],
        "rules": [{"rule": r.rule, "events": r.n} for r in rules],
    }


def latest_alerts(db: Database) -> list[dict[str, Any]]:
    """The newest open alerts of severity high and critical (what a duty officer acts on)."""
    a = alerts.c
    with db.read() as conn:
        rows = conn.execute(
            select(a.id, a.kind, a.severity, a.host, a.agent_id, a.account, a.title, a.status,
                   a.count, a.last_seen)
            .where(a.status.in_(_OPEN), a.severity >= Severity.HIGH.rank)
            .order_by(a.last_seen.desc(), a.id.desc()).limit(LATEST)
        ).all()
    return [{"id": r.id, "kind": r.kind, "pillar": pillar_of(r.kind),
             "severity": Severity.from_rank(r.severity).value, "host": r.host,
             "agent_id": r.agent_id, "account": r.account, "title": r.title, "status": r.status,
             "count": r.count, "last_seen": r.last_seen.isoformat()} for r in rows]


def fleet(agents: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Agent fleet health from the agents page's rows: status, degraded, versions."""
    rows = [a for a in agents if a["status"] != "revoked"]
    status = Counter(a["status"] for a in rows)
    return {
        "total": len(rows),
        "online": status.get("online", 0),
        "silent": status.get("silent", 0),
        "never_seen": status.get("never_seen", 0),
        "degraded": sum(1 for a in rows if a["degraded"]),
        "versions": Counter(a["agent_version"] or "-" for a in rows).most_common(6),
        "policy_versions": Counter(a["policy_version"] or "-" for a in rows).most_common(6),
        "silent_hosts": [{"id": a["id"], "hostname": a["hostname"]}
                         for a in rows if a["status"] == "silent"][:TOP],
    }


def duty_now(policy: AlertingPolicy | None, calendar: WorkCalendar | None, db: Database,
             now: datetime) -> dict[str, Any]:
    """The key period in force and who is on duty now and in the next shift."""
    today = now.astimezone(SHANGHAI).date()
    if policy is not None:
        calendar = policy.calendar.work_calendar()
    period = calendar.key_period(today) if calendar is not None else None
    result: dict[str, Any] = {"key_period": period.name if period else None,
                              "current": None, "next": None, "configured": policy is not None}
    if policy is not None:
        current = duty.on_duty(policy, db, now)
        upcoming = duty.next_on_duty(policy, db, now)
        result["current"] = duty.describe(policy, current) if current else None
        result["next"] = duty.describe(policy, upcoming) if upcoming else None
    return result
