"""The overview (安全态势总览): each pillar's figures today and over 7 and 30 days, at a glance.

A pillar is the family an event kind starts with (``outreach`` 违规外联,
``account`` 外包账号, ``document`` 裁判文书). The window figures, the trend and
the top lists come from the alerts table, which holds one row per problem
rather than per event (a twentieth of the events in ``bench/console.py``'s
store): alerts opened and closed in a window through ``ix_alerts_created_at``
and ``ix_alerts_closed_at`` (migration 0009), open alerts through
``ix_alerts_status_last_seen_id``, the top lists over the alerts last seen in
7 days through ``ix_alerts_last_seen_id``. Events are read for one figure
only, today's findings (events of severity ``low`` and above since
midnight), through ``ix_events_time_id`` over a single day. docs/console.md
gives the cost on a large store.
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
    """Per pillar: for each window in ``keys`` the alerts opened and closed and the median
    minutes to acknowledge (the opened ones that were acknowledged); the open alerts by
    severity; with ``trend``, the alerts opened per day over ``TREND_DAYS``."""
    today = now.astimezone(SHANGHAI).date()
    starts = {key: start for key, start in window_starts(today).items() if key in keys}
    if trend:
        starts.setdefault("trend", window_starts(today)["30d"])
    first = min(starts.values())
    days = [(today - timedelta(days=TREND_DAYS - 1 - i)).isoformat() for i in range(TREND_DAYS)]
    a = alerts.c
    with db.read() as conn:
        opened = conn.execute(
            select(a.kind, a.created_at, a.acknowledged_at).where(a.created_at >= first)
        ).all()
        closed = conn.execute(select(a.kind, a.closed_at).where(a.closed_at >= first)).all()
        open_now = conn.execute(
            select(a.kind, a.severity, func.count())
            .where(a.status.in_(_OPEN)).group_by(a.kind, a.severity)
        ).all()
    result: dict[str, Any] = {
        pillar: {"windows": {key: {"opened": 0, "closed": 0, "_waits": []} for key in keys},
                 "open": dict.fromkeys(SEVERITY_NAMES, 0),
                 "trend": dict.fromkeys(days, 0)}
        for pillar in PILLARS}
    for kind, created, acknowledged in opened:
        pillar = pillar_of(kind)
        if pillar is None:
            continue
        day = created.astimezone(SHANGHAI).date().isoformat()
        if day in result[pillar]["trend"]:
            result[pillar]["trend"][day] += 1
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
    for figures_of in result.values():
        for window in figures_of["windows"].values():
            window["ack_median_min"] = _median_minutes(window.pop("_waits"))
        figures_of["trend"] = list(figures_of["trend"].values()) if trend else []
    return {"pillars": result, "days": days if trend else []}


def findings_today(db: Database, now: datetime) -> dict[str, int]:
    """Per pillar, events of severity ``low`` and above since midnight (Asia/Shanghai)."""
    midnight = window_starts(now.astimezone(SHANGHAI).date())["today"]
    e = events.c
    with db.read() as conn:
        rows = conn.execute(
            select(e.kind, func.count())
            .where(e.time >= midnight, e.time <= now, e.severity >= _FINDING).group_by(e.kind)
        ).all()
    found = dict.fromkeys(PILLARS, 0)
    for kind, n in rows:
        pillar = pillar_of(kind)
        if pillar is not None:
            found[pillar] += n
    return found


def merge(slow: dict[str, Any], live: dict[str, Any], found: dict[str, int]) -> dict[str, Any]:
    """The slow figures (7 and 30 days, trend) with the live ones (today, open) laid over."""
    pillars = {}
    for pillar in PILLARS:
        pillars[pillar] = {
            **slow["pillars"][pillar],
            "windows": {**slow["pillars"][pillar]["windows"],
                        **live["pillars"][pillar]["windows"]},
            "open": live["pillars"][pillar]["open"],
            "findings_today": found[pillar],
        }
    return {"pillars": pillars, "days": slow["days"]}


def top_lists(db: Database, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """The hosts, accounts and rules with the most alerts active (last seen) over
    ``TOP_WINDOW_DAYS``, then the most events in them."""
    today = now.astimezone(SHANGHAI).date()
    since = datetime.combine(today - timedelta(days=TOP_WINDOW_DAYS - 1), time(), SHANGHAI)
    a = alerts.c
    active = a.last_seen >= since
    n = func.count().label("n")
    total = func.sum(a.count).label("total")
    rule = func.coalesce(a.rule_id, a.kind).label("rule")
    with db.read() as conn:
        hosts = conn.execute(
            select(a.agent_id, a.host, n, total).where(active).group_by(a.agent_id, a.host)
            .order_by(n.desc(), total.desc(), a.host).limit(TOP)).all()
        accounts = conn.execute(
            select(a.account, n, total).where(active, a.account.is_not(None))
            .group_by(a.account).order_by(n.desc(), total.desc(), a.account).limit(TOP)).all()
        rules = conn.execute(
            select(rule, n, total).where(active).group_by(rule)
            .order_by(n.desc(), total.desc(), rule).limit(TOP)).all()
    return {
        "hosts": [{"agent_id": r.agent_id, "host": r.host, "alerts": r.n,
                   "events": int(r.total)} for r in hosts],
        "accounts": [{"account": r.account, "alerts": r.n, "events": int(r.total)}
                     for r in accounts],
        "rules": [{"rule": r.rule, "alerts": r.n, "events": int(r.total)} for r in rules],
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
