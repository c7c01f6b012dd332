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
from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    SmallInteger,
    String,
    bindparam,
    case,
    column,
    func,
    insert,
    select,
    text,
)
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


#: What each alert row of a batch carries into the upsert; the rest is the batch's own.
_ALERT_FIELDS: Final = (
    ("fingerprint", String()), ("rule_id", String()), ("kind", String()),
    ("severity", SmallInteger()), ("host", String()), ("account", String()),
    ("title", String()), ("count", BigInteger()), ("first_seen", DateTime(timezone=True)),
    ("last_seen", DateTime(timezone=True)), ("last_event_id", String()),
)
_LINK_FIELDS: Final = (("event_id", String()), ("alert_id", BigInteger()))
_CHANGE_FIELDS: Final = (("alert_id", BigInteger()), ("change", String()))


@dataclass(frozen=True)
class _Statements:
    """One dialect's three batch statements and how each takes its rows.

    SQLite runs each as an executemany (its driver loops in C over one prepared
    statement). PostgreSQL takes the rows as one JSON document unpacked by
    ``jsonb_to_recordset``: one short statement whatever the batch size, where
    an executemany would be a round trip per row and a multi-row VALUES a new
    statement, parsed by psycopg in Python, per batch size.
    """

    upsert: Any
    link: Any
    change: Any
    as_document: bool

    def run(self, conn: Connection, stmt: Any, rows: list[dict[str, Any]],
            **shared: Any) -> Any:
        if self.as_document:
            return conn.execute(stmt, {"rows": rows, **shared})
        return conn.execute(stmt, [{**row, **shared} for row in rows])


def _recordset(fields: tuple[tuple[str, Any], ...]) -> Any:
    """``jsonb_to_recordset(:rows) AS rows(<fields with their types>)`` (PostgreSQL)."""
    return func.jsonb_to_recordset(bindparam("rows", type_=postgresql.JSONB)).table_valued(
        *(column(name, type_) for name, type_ in fields)
    ).render_derived(name="rows", with_types=True)


def _on_conflict(dialect: str, stmt: Any) -> Any:
    """The upsert into the open alert of each fingerprint, returning id, fingerprint, count."""
    greatest = func.greatest if dialect == "postgresql" else func.max
    least = func.least if dialect == "postgresql" else func.min
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
def _statements(dialect: str) -> _Statements:
    if dialect != "postgresql":
        return _Statements(
            upsert=_on_conflict(dialect, sqlite.insert(alerts)),
            link=sqlite.insert(alert_events).on_conflict_do_nothing(),
            change=insert(alert_changes).returning(alert_changes.c.id, alert_changes.c.alert_id),
            as_document=False,
        )
    alert_rows = _recordset(_ALERT_FIELDS)
    # In fingerprint order, so concurrent writers lock rows alike.
    upsert_source = select(
        *(alert_rows.c[name] for name, _ in _ALERT_FIELDS),
        bindparam("agent_id", type_=String()), bindparam("status", type_=String()),
        bindparam("created_at", type_=DateTime(timezone=True)),
        bindparam("updated_at", type_=DateTime(timezone=True)),
    ).order_by(alert_rows.c.fingerprint)
    upsert_columns = [name for name, _ in _ALERT_FIELDS] + [
        "agent_id", "status", "created_at", "updated_at"]
    link_rows = _recordset(_LINK_FIELDS)
    change_rows = _recordset(_CHANGE_FIELDS)
    return _Statements(
        upsert=_on_conflict(dialect, postgresql.insert(alerts).from_select(
            upsert_columns, upsert_source)),
        link=postgresql.insert(alert_events).from_select(
            ["event_id", "alert_id"], select(link_rows.c.event_id, link_rows.c.alert_id),
        ).on_conflict_do_nothing(),
        change=insert(alert_changes).from_select(
            ["alert_id", "change", "at"],
            select(change_rows.c.alert_id, change_rows.c.change,
                   bindparam("at", type_=DateTime(timezone=True))),
        ).returning(alert_changes.c.id, alert_changes.c.alert_id),
        as_document=True,
    )


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
    statements = _statements(conn.dialect.name)
    keys = sorted(groups)
    upserted = statements.run(conn, statements.upsert, [
        {
            "fingerprint": key,
            "rule_id": groups[key].first.rule_id,
            "kind": groups[key].first.kind,
            "severity": groups[key].severity,
            "host": groups[key].first.host,
            "account": account_of(groups[key].first),
            "title": groups[key].first.summary,
            "count": len(groups[key].events),
            "first_seen": groups[key].oldest.time,
            "last_seen": groups[key].newest.time,
            "last_event_id": str(groups[key].newest.id),
        }
        for key in keys
    ], agent_id=agent_id, status="new", created_at=now, updated_at=now)
    stored = {row.fingerprint: (row.id, row.count) for row in upserted}
    # Two agents' events may share an id and a fingerprint: link it once.
    statements.run(conn, statements.link, [
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
    """Append one feed entry per (alert id, change), as one statement, in id order.

    The caller holds ``lock_alerts``; each alert appears at most once.
    """
    statements = _statements(conn.dialect.name)
    rows = statements.run(conn, statements.change, [
        {"alert_id": alert_id, "change": change} for alert_id, change in changes
    ], at=now)
    kinds = dict(changes)
    return sorted(
        (AlertChange(row.id, row.alert_id, kinds[row.alert_id], now) for row in rows),
        key=lambda entry: entry.id,
    )


def linked_alert_ids(conn: Connection, event_ids: Sequence[str]) -> dict[str, int]:
    rows = conn.execute(
        select(alert_events.c.event_id, alert_events.c.alert_id).where(
            alert_events.c.event_id.in_(list(event_ids))
        )
    )
    return {row.event_id: row.alert_id for row in rows}
