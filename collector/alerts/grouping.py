"""Events into alerts, inside the transaction that stored the events.

Which events make alerts: every newly stored event of severity ``low`` or above.
Info events (heartbeats, started, stopping, policy applied, session records)
are a record, not an alarm.

The fingerprint is the rule (or the kind, for events without a rule), the host,
the account the evidence names (its ``account`` field), and the values of the
fields the kind's evidence model lists in ``FINGERPRINT_FIELDS``. No kind is
named here.

One open alert per fingerprint (a partial unique index on the fingerprint of
alerts not closed): events upsert into it, raising ``count``, ``last_seen`` and
``severity`` (the highest seen). An event whose fingerprint has only a closed
alert opens a new alert (the closed one stays closed: its resolution was a
judgement on what had happened then). Nothing here reopens an alert; people do.

Concurrency: on PostgreSQL each alert-writing transaction first takes one
transaction-level advisory lock (``ALERT_LOCK``), so two collector processes
never race on an alert row and ``alert_changes`` ids are assigned in commit
order: a reader that resumes from the last id it saw misses nothing.
SQLite has a single writer already.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson
from sqlalchemy import Connection, case, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite

from agent.events import Event, Severity
from agent.registry import EVIDENCE_MODELS
from collector.store import audit
from collector.store.tables import _ALERT_OPEN as ALERT_OPEN_PREDICATE
from collector.store.tables import alert_changes, alert_events, alerts

#: Events below this severity never make an alert.
ALERT_MIN_SEVERITY: Final = Severity.LOW
#: The advisory lock key (PostgreSQL) every alert-writing transaction takes first.
ALERT_LOCK: Final = 0x636F_7572_7461_6C72  # "courtalr"
SYSTEM: Final = audit.Actor("system", via="ingest")


@dataclass(frozen=True)
class AlertChange:
    """A change feed entry: ``opened``, ``count_raised``, ``status_changed`` or ``assigned``."""

    id: int
    alert_id: int
    change: str
    at: datetime


def lock_alerts(conn: Connection) -> None:
    """Serialise alert writers across processes (PostgreSQL); see the module docstring."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (ALERT_LOCK,))


def makes_alert(event: Event) -> bool:
    return event.severity.rank >= ALERT_MIN_SEVERITY.rank


def _field(evidence: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(evidence, dict):
            return None
        evidence = evidence.get(part)
    return evidence


def account_of(event: Event) -> str | None:
    """The evidence's ``account`` field when it is non-empty text (at most 256 characters)."""
    account = event.evidence.get("account")
    return account[:256] if isinstance(account, str) and account else None


def fingerprint(event: Event) -> str:
    """The hex SHA-256 of rule (or kind), host, account and the kind's fingerprint fields."""
    model = EVIDENCE_MODELS.get(event.kind)
    fields = model.FINGERPRINT_FIELDS if model is not None else ()
    parts = [
        event.rule_id or event.kind,
        event.host,
        account_of(event),
        [_field(event.evidence, path) for path in fields],
    ]
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()


@dataclass
class _Group:
    first: Event
    newest: Event
    oldest: Event
    severity: int
    events: list[Event]


def _groups(events: Iterable[Event]) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    for event in events:
        if not makes_alert(event):
            continue
        key = fingerprint(event)
        group = groups.get(key)
        if group is None:
            groups[key] = _Group(event, event, event, event.severity.rank, [event])
            continue
        group.events.append(event)
        group.severity = max(group.severity, event.severity.rank)
        if (event.time, str(event.id)) > (group.newest.time, str(group.newest.id)):
            group.newest = event
        if event.time < group.oldest.time:
            group.oldest = event
    return groups


@functools.cache
def _upsert(dialect: str) -> Any:
    """The alert upsert, built once per dialect: executed with one row per group of a batch."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    greatest = func.greatest if dialect == "postgresql" else func.max
    least = func.least if dialect == "postgresql" else func.min
    stmt = module.insert(alerts)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[alerts.c.fingerprint],
        # A literal, not a bound parameter: once psycopg prepares the statement (its
        # sixth run on a connection) PostgreSQL cannot match a parameter to the partial
        # index's predicate and refuses the upsert.
        index_where=text(ALERT_OPEN_PREDICATE),
        set_={
            "count": alerts.c.count + excluded.count,
            "severity": greatest(alerts.c.severity, excluded.severity),
            "first_seen": least(alerts.c.first_seen, excluded.first_seen),
            "last_event_id": case(
                (excluded.last_seen >= alerts.c.last_seen, excluded.last_event_id),
                else_=alerts.c.last_event_id,
            ),
            "last_seen": greatest(alerts.c.last_seen, excluded.last_seen),
            "updated_at": excluded.updated_at,
        },
    ).returning(alerts.c.id, alerts.c.fingerprint, alerts.c.count)


@functools.cache
def _link(dialect: str) -> Any:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(alert_events).on_conflict_do_nothing()


def group_events(
    conn: Connection, agent_id: str, new_events: Sequence[Event], now: datetime
) -> list[AlertChange]:
    """Upsert the alerts of ``new_events`` (only events stored for the first time); link them.

    One statement per step for the whole batch, however many alerts it touches:
    the upsert (a row per fingerprint, in fingerprint order so concurrent writers
    lock rows alike), the links, the audit rows of the alerts it opened and the
    change feed entries. Returns the feed entries written, for in-process subscribers.
    """
    groups = _groups(new_events)
    if not groups:
        return []
    lock_alerts(conn)
    dialect = conn.dialect.name
    keys = sorted(groups)
    stored = {
        row.fingerprint: (row.id, row.count)
        for row in conn.execute(_upsert(dialect), [
            {
                "fingerprint": key,
                "rule_id": groups[key].first.rule_id,
                "kind": groups[key].first.kind,
                "severity": groups[key].severity,
                "host": groups[key].first.host,
                "agent_id": agent_id,
                "account": account_of(groups[key].first),
                "title": groups[key].first.summary,
                "status": "new",
                "count": len(groups[key].events),
                "first_seen": groups[key].oldest.time,
                "last_seen": groups[key].newest.time,
                "last_event_id": str(groups[key].newest.id),
                "created_at": now,
                "updated_at": now,
            }
            for key in keys
        ])
    }
    # Two agents' events may share an id and a fingerprint: link it once.
    conn.execute(_link(dialect), [
        {"event_id": str(event.id), "alert_id": stored[key][0]}
        for key in keys for event in groups[key].events
    ])
    # A fresh row holds exactly this batch's count; an updated one holds more.
    opened = {stored[key][0] for key in keys if stored[key][1] == len(groups[key].events)}
    audit.record_each(conn, SYSTEM, "alert.open", "alert",
                      [str(alert_id) for alert_id in sorted(opened)], now, to_value="new")
    return record_changes(conn, [
        (stored[key][0], "opened" if stored[key][0] in opened else "count_raised") for key in keys
    ], now)


def record_change(conn: Connection, alert_id: int, change: str, now: datetime) -> AlertChange:
    """Append to the durable change feed (the caller holds ``lock_alerts``)."""
    return record_changes(conn, [(alert_id, change)], now)[0]


def record_changes(
    conn: Connection, changes: Sequence[tuple[int, str]], now: datetime
) -> list[AlertChange]:
    """Append one feed entry per (alert id, change), in that order, as one statement.

    The caller holds ``lock_alerts``; each alert appears at most once.
    """
    if len(changes) == 1:
        alert_id, change = changes[0]
        change_id = conn.execute(
            insert(alert_changes).values(alert_id=alert_id, change=change, at=now)
            .returning(alert_changes.c.id)
        ).scalar_one()
        return [AlertChange(change_id, alert_id, change, now)]
    rows = conn.execute(
        insert(alert_changes).returning(alert_changes.c.id, alert_changes.c.alert_id,
                                        sort_by_parameter_order=True),
        [{"alert_id": alert_id, "change": change, "at": now} for alert_id, change in changes],
    )
    kinds = dict(changes)
    return [AlertChange(row.id, row.alert_id, kinds[row.alert_id], now) for row in rows]


def linked_alert_ids(conn: Connection, event_ids: Sequence[str]) -> dict[str, int]:
    rows = conn.execute(
        select(alert_events.c.event_id, alert_events.c.alert_id).where(
            alert_events.c.event_id.in_(list(event_ids))
        )
    )
    return {row.event_id: row.alert_id for row in rows}
