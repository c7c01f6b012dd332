"""What each console page shows, as plain data: the JSON API returns exactly these dicts.

A page and its API twin call the same function with the same parameters
(``collector.console.params``), so what a person sees and what a script reads
cannot drift apart.
"""

from __future__ import annotations

import base64
import binascii
import functools
import uuid
from collections.abc import Sequence
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any, Final

import orjson
import structlog
from sqlalchemy import Integer, select

from agent.calendar_cn import SHANGHAI, WorkCalendar
from agent.policy.loader import load_policy_dir
from agent.upgrade.versions import release_order
from collector.alerts import service
from collector.api import bounds
from collector.api.views import agent_view, predecessor_view, with_predecessors
from collector.console import params as p
from collector.console import reports
from collector.correlation.silent_pass import SilentAgentPass
from collector.releases.store import failed_upgrades
from collector.store import audit
from collector.store.agents import list_agents
from collector.store.database import Database
from collector.store.events import (
    COUNT_CAP,
    DEFAULT_EVENT_ORDER,
    EVENT_ORDERS,
    EventFilter,
    count_events,
    get_event,
    query_events,
    sort_values,
)
from collector.store.filters import SortOrder
from collector.store.tables import UTCDateTime
from collector.store.tables import users as users_table

log = structlog.get_logger("collector.console")

PAGE: Final = 50
MAX_PAGE: Final = 1000
RELATED: Final = 10


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def _decode(cursor: str, length: int) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise p.FilterError("cursor", "not a cursor this API returned") from None
    if not isinstance(values, list) or len(values) != length:
        raise p.FilterError("cursor", "not a cursor this API returned")
    return values


def _cursor_time(value: Any) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise p.FilterError("cursor", "not a cursor this API returned") from None
    if when.tzinfo is None:
        raise p.FilterError("cursor", "not a cursor this API returned")
    return p.checked("cursor", bounds.check_time, when)


def sort_cursor(cursor: str, order: SortOrder) -> list[Any]:
    """The keyset a cursor holds, each value checked against its column's type."""
    values = _decode(cursor, len(order.columns))
    checked: list[Any] = []
    for column, value in zip(order.columns, values, strict=True):
        if value is None and column.nullable:
            checked.append(None)
        elif isinstance(column.type, UTCDateTime):
            checked.append(_cursor_time(value))
        elif column.name == "id" and column.table.name == "events":
            try:
                checked.append(str(uuid.UUID(str(value))))
            except ValueError:
                raise p.FilterError("cursor", "not a cursor this API returned") from None
        elif isinstance(column.type, Integer):
            if not isinstance(value, int) or isinstance(value, bool):
                raise p.FilterError("cursor", "not a cursor this API returned")
            checked.append(p.checked("cursor", bounds.check_id, value))
        elif isinstance(value, str) and len(value) <= 2000:
            checked.append(p.checked("cursor", bounds.check_text, value))
        else:
            raise p.FilterError("cursor", "not a cursor this API returned")
    return checked


def _cursor_param(params: p.Params) -> str | None:
    return p.text(params, "cursor", 4096)


def events_listing(
    db: Database, params: p.Params, zone: tzinfo, counts: bool = True
) -> dict[str, Any]:
    """``{events, next_cursor, counts}``: one page, newest first, and counts by severity."""
    where = p.event_filter(params, zone)
    order = p.sort(params, EVENT_ORDERS, DEFAULT_EVENT_ORDER)
    limit = p.limit(params, PAGE, MAX_PAGE)
    cursor = _cursor_param(params)
    rows = query_events(db, where, limit + 1, sort_cursor(cursor, order) if cursor else None,
                        order)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(*sort_values(rows[-1], order))
    result: dict[str, Any] = {"events": rows, "next_cursor": next_cursor, "sort": order.name}
    if counts:
        found = count_events(db, where)
        # under common free text the counts cover only the newest matches: "at least"
        result["counts_partial"] = bool(found.pop("partial", 0))
        result["counts"] = found
        result["counts_cap"] = COUNT_CAP  # a count above this means "more than"
    return result


def alerts_listing(db: Database, params: p.Params, zone: tzinfo) -> dict[str, Any]:
    """``{alerts, next_cursor, counts, groups}``: highest severity, then most recently seen, first.

    ``sort`` picks another order (``ALERT_ORDERS``); ``group=host|rule|account`` adds the
    filtered alerts' groups with their counts.
    """
    where = p.alert_filter(params, zone)
    order = p.sort(params, service.ALERT_ORDERS, service.DEFAULT_ALERT_ORDER)
    group = params.get("group") or None
    if group is not None and group not in service.GROUPS:
        raise p.FilterError("group", f"{group!r} is not one of {', '.join(service.GROUPS)}")
    limit = p.limit(params, PAGE, MAX_PAGE)
    cursor = _cursor_param(params)
    rows = service.list_alerts(db, where, limit + 1,
                               sort_cursor(cursor, order) if cursor else None, order)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(*service.alert_sort_values(rows[-1], order))
    names = display_names(db, [row["assignee"] for row in rows])
    for row in rows:
        row["assignee_name"] = names.get(row["assignee"]) if row["assignee"] else None
    return {"alerts": rows, "next_cursor": next_cursor, "sort": order.name,
            "counts": service.count_alerts(db, where),
            "group": group, "groups": service.group_alerts(db, where, group) if group else []}


def display_names(db: Database, logins: Sequence[str | None]) -> dict[str, str]:
    """Console users' display names by login, for those of ``logins`` that have one."""
    wanted = sorted({login for login in logins if login})
    if not wanted:
        return {}
    with db.read() as conn:
        return {row.username: row.display_name for row in conn.execute(
            select(users_table.c.username, users_table.c.display_name)
            .where(users_table.c.username.in_(wanted), users_table.c.display_name != ""))}


def event_detail(db: Database, event_id: str) -> dict[str, Any] | None:
    """``{event, alert, related: {host, account, rule}}``: the event and its neighbours."""
    try:
        event_id = str(uuid.UUID(event_id))
    except ValueError:
        return None
    event = get_event(db, event_id)
    if event is None:
        return None
    alert_id = service.alert_of_event(db, event_id)
    account = event["evidence"].get("account") if isinstance(event["evidence"], dict) else None
    related: dict[str, list[dict[str, Any]]] = {}
    for key, where in (
        ("host", EventFilter(host=event["host"])),
        ("account", EventFilter(account=account) if isinstance(account, str) and account else None),
        ("rule", EventFilter(rule_id=event["rule_id"]) if event["rule_id"] else None),
    ):
        rows = [] if where is None else query_events(db, where, RELATED + 1, None)
        related[key] = [_brief(r) for r in rows if r["id"] != event_id][:RELATED]
    return {
        "event": event,
        "alert": service.get_alert(db, alert_id) if alert_id else None,
        "related": related,
    }


def _brief(event: dict[str, Any]) -> dict[str, Any]:
    return {k: event[k] for k in ("id", "time", "host", "kind", "severity", "rule_id", "summary")}


def alert_detail(db: Database, alert_id: int) -> dict[str, Any] | None:
    """``{alert, events, history}``: the alert, its newest events, its audit trail."""
    alert = service.get_alert(db, alert_id)
    if alert is None:
        return None
    ids = service.alert_event_ids(db, alert_id, PAGE)
    found = [e for e in (get_event(db, event_id) for event_id in ids) if e is not None]
    history = audit.entries_for(db, "alert", [str(alert_id)])
    logins = [alert["assignee"], *(h["actor"] for h in history)]
    logins += [v for h in history if h["action"] == "alert.assign" for v in (h["from"], h["to"])]
    names = display_names(db, logins)
    alert["assignee_name"] = names.get(alert["assignee"] or "")
    for entry in history:
        entry["actor_name"] = names.get(entry["actor"])
    latest = found[0] if found else None
    return {
        "alert": alert,
        "events": [_brief(e) for e in found],
        "evidence": latest["evidence"] if latest else None,
        "evidence_event": _brief(latest) if latest else None,
        "history": history,
        "names": names,
    }


@functools.lru_cache(maxsize=4)
def _policies(policy_dir: str, stamp: tuple[tuple[str, int], ...]) -> Any:
    """The policy directory, parsed once per change of its files (``stamp``)."""
    return load_policy_dir(Path(policy_dir))


def rule_text(policy_dir: Any, rule_id: str | None) -> dict[str, Any] | None:
    """The policy's rule behind an alert: its description (Chinese when known) and legal basis."""
    if not rule_id or policy_dir is None:
        return None
    from collector.console.rule_texts import RULE_ZH

    try:
        stamp = tuple(sorted((path.name, path.stat().st_mtime_ns)
                             for path in Path(policy_dir).glob("*.yaml")))
        policies = _policies(str(policy_dir), stamp)
    except Exception as exc:  # a broken policy dir must not take the alert page down
        log.warning("no rule text for the console", error=str(exc))
        return None
    for document in policies.documents.values():
        rule = document.rule(rule_id) if hasattr(document, "rule") else None
        if rule is not None:
            basis = getattr(rule.match, "basis", None)
            return {"id": rule.id, "desc": " ".join(str(rule.desc).split()),
                    "desc_zh": RULE_ZH.get(rule.id), "basis": basis,
                    "severity": str(rule.severity.value if hasattr(rule.severity, "value")
                                    else rule.severity)}
    return {"id": rule_id, "desc": None, "desc_zh": RULE_ZH.get(rule_id), "basis": None,
            "severity": None}


def audit_listing(db: Database, params: p.Params, zone: tzinfo) -> dict[str, Any]:
    """``{entries, next_cursor}``: the audit log newest first."""
    where = p.audit_filter(params, zone)
    limit = p.limit(params, PAGE, MAX_PAGE)
    cursor = _cursor_param(params)
    before = None
    if cursor:
        (value,) = _decode(cursor, 1)
        if not isinstance(value, int):
            raise p.FilterError("cursor", "not a cursor this API returned")
        before = p.checked("cursor", bounds.check_id, value)
    rows = audit.query_audit(db, where, limit + 1, before)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["id"])
    logins = [r["actor"] for r in rows]
    logins += [v for r in rows if r["action"] == "alert.assign" for v in (r["from"], r["to"])]
    names = display_names(db, logins)
    for row in rows:
        row["actor_name"] = names.get(row["actor"])
    return {"entries": rows, "next_cursor": next_cursor, "names": names}


def work_calendar(policy_dir: Any) -> WorkCalendar | None:
    """The site calendar (key periods) from the policy that carries one, if any."""
    try:
        policies = load_policy_dir(policy_dir)
    except Exception as exc:  # a broken policy dir must not take the agents page down
        log.warning("no work calendar for the console", error=str(exc))
        return None
    for document in policies.documents.values():
        found = getattr(document, "work_calendar", None)
        if isinstance(found, WorkCalendar):
            return found
    return None


def agents_listing(
    db: Database, monitor: SilentAgentPass, calendar: WorkCalendar | None, now: datetime
) -> dict[str, Any]:
    """``{agents, key_period}``; a silent agent during a key period has ``alarm: true``."""
    today = now.astimezone(SHANGHAI).date()
    key_period = calendar.key_period(today) if calendar is not None else None
    views = []
    # A process not holding the silent check's lease never runs it: its rule follows the
    # policy here, so every process lists agents as the lease holder judges them.
    monitor.reload_rule()
    failures = failed_upgrades(db)
    # One line per host: an identity superseded by a re-enrollment is listed under its
    # successor, and its events stay reachable through its id.
    for row, earlier in with_predecessors(list_agents(db)):
        view = agent_view(row, monitor.status_of(row, now))
        view["predecessors"] = [predecessor_view(r) for r in earlier]
        failure = failures.get(str(row["id"]))
        # A failure stays shown until the agent runs that version or a newer one.
        view["upgrade_failed"] = failure if failure is not None and release_order(
            failure["version"], str(row["agent_version"] or "")) > 0 else None
        view["degraded"] = sorted(
            name
            for name, health in (view["detectors"] or {}).items()
            if isinstance(health, dict) and health.get("state") not in (None, "ok")
        )
        view["alarm"] = key_period is not None and view["status"] == "silent"
        views.append(view)
    return {"agents": views, "key_period": key_period.name if key_period else None}


def report(db: Database, params: p.Params, today: date) -> dict[str, Any]:
    kind = params.get("period") or "day"
    if kind not in ("day", "month"):
        raise p.FilterError("period", "must be day or month")
    raw = (params.get("date") or "").strip()
    try:
        day = date.fromisoformat(raw) if raw else today
    except ValueError:
        raise p.FilterError("date", f"{raw!r} is not a date like 2026-11-27") from None
    return reports.summary(db, reports.period(kind, p.checked("date", bounds.check_date, day)))
