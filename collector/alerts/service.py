"""Alert triage: the one way the console, the JSON API and the alert router change an alert.

The router (``collector.routing``) calls it to unacknowledge an alert nobody
started work on in time, the same transition a person makes.

Every function takes the ``Database``; every state change runs in one write
transaction that also appends the audit log entry and the change-feed entry,
so an alert never changes without a record of who changed it. The interface
is documented in docs/alerts.md.

Status model::

    new ──acknowledge(assignee)──▶ acknowledged ──start──▶ in_progress
     │  ◀──unacknowledge(reason)──┘      │                     │
     └──────────── close(resolution, comment) ◀────────────────┘
    closed ──reopen(reason)──▶ acknowledged
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import BigInteger, Connection, and_, cast, func, select, update

from agent.events import Severity, utcnow
from collector.alerts.grouping import AlertChange, lock_alerts, record_change
from collector.store import audit
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.filters import SortOrder, containing, equal_to, one_of, sort_orders, within
from collector.store.fulltext import text_condition
from collector.store.tables import (
    alert_changes,
    alert_events,
    alert_groups,
    alerts,
    events,
)

RESOLUTIONS: Final = (
    "true_positive",
    "false_positive",
    "authorised",
    "duplicate",
    "policy_exception",
    "other",
)
STATUSES: Final = ("new", "acknowledged", "in_progress", "closed")
#: action -> (statuses it applies to, the status it leads to)
TRANSITIONS: Final[dict[str, tuple[frozenset[str], str]]] = {
    "acknowledge": (frozenset({"new"}), "acknowledged"),
    "unacknowledge": (frozenset({"acknowledged"}), "new"),
    "start": (frozenset({"acknowledged"}), "in_progress"),
    "close": (frozenset({"new", "acknowledged", "in_progress"}), "closed"),
    "reopen": (frozenset({"closed"}), "acknowledged"),
    "assign": (frozenset({"acknowledged", "in_progress"}), ""),  # "" keeps the status
}
MAX_COMMENT: Final = 2000


class AlertError(Exception):
    """A refused change: ``code`` for scripts, ``detail`` for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Outcome:
    """What one alert of a (bulk) action came to."""

    alert_id: int
    ok: bool
    from_status: str | None = None
    to_status: str | None = None
    error: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class AlertFilter:
    """Filters of the alert list; every value reaches SQL as a bound parameter."""

    statuses: Sequence[str] = ()
    severities: Sequence[int] = ()
    min_severity: int | None = None
    kinds: Sequence[str] = ()
    host: str | None = None
    account: str | None = None
    rule_id: str | None = None
    assignee: str | None = None
    since: datetime | None = None  # on last_seen
    until: datetime | None = None
    text: str | None = None  # in title, host, account, rule


# -- reading -------------------------------------------------------------------------------


def _conditions(where: AlertFilter, conn: Connection | None = None) -> list[Any]:
    """The list's WHERE; free text uses the trigram index when ``conn`` is given."""
    c = alerts.c
    conditions: list[Any] = [
        *one_of((c.status, where.statuses), (c.severity, where.severities), (c.kind, where.kinds)),
        *equal_to((c.host, where.host), (c.account, where.account), (c.rule_id, where.rule_id),
                  (c.assignee, where.assignee)),
        *within(c.last_seen, where.since, where.until),
    ]
    if where.text:
        conditions.append(text_condition(conn, "alerts", where.text)[0] if conn is not None
                          else containing(where.text, c.title, c.host, c.account, c.rule_id)[0])
    if where.min_severity is not None:
        conditions.append(c.severity >= where.min_severity)
    return conditions


_TIEBREAK = (alerts.c.last_seen, alerts.c.id)
#: The list's orders by the name the page and the API take (``sort=host``, ``sort=-host``).
#: Indexed: id, severity, status, host, account, rule, last seen, assignee; title and
#: count sort the filtered alerts (a table far smaller than events; count changes per event).
ALERT_ORDERS: Final[dict[str, SortOrder]] = sort_orders({
    "id": (alerts.c.id,),
    "severity": (alerts.c.severity, *_TIEBREAK),
    "status": (alerts.c.status, *_TIEBREAK),
    "title": (alerts.c.title, *_TIEBREAK),
    "host": (alerts.c.host, *_TIEBREAK),
    "account": (alerts.c.account, *_TIEBREAK),
    "rule": (alerts.c.rule_id, *_TIEBREAK),
    "count": (alerts.c.count, *_TIEBREAK),
    "last_seen": _TIEBREAK,
    "assignee": (alerts.c.assignee, *_TIEBREAK),
})
#: Highs on top, then the most recently seen.
DEFAULT_ALERT_ORDER: Final = "-severity"
#: What the list can be grouped by: name → column.
GROUPS: Final = {"host": alerts.c.host, "rule": alerts.c.rule_id, "account": alerts.c.account}
MAX_GROUPS: Final = 200


def list_alerts(
    db: Database, where: AlertFilter, limit: int, after: Sequence[Any] | None = None,
    order: SortOrder | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` alerts in ``order`` (highs first), strictly after the keyset ``after``."""
    order = order or ALERT_ORDERS[DEFAULT_ALERT_ORDER]
    with db.read() as conn:
        conditions = _conditions(where, conn)
        if after is not None:
            conditions.append(order.after(after, db.dialect))
        query = (
            select(alerts)
            .where(and_(True, *conditions))
            .order_by(*order.order_by())
            .limit(limit)
        )
        return [public(row._mapping) for row in conn.execute(query)]


def alert_sort_values(row: dict[str, Any], order: SortOrder) -> list[Any]:
    """The values of ``order``'s columns in a listed alert, for the next page's cursor."""
    return [Severity(row["severity"]).rank if column.name == "severity" else row[column.name]
            for column in order.columns]


def group_alerts(db: Database, where: AlertFilter, by: str) -> list[dict[str, Any]]:
    """The filtered alerts grouped by host, rule or account: count, highest severity, newest.

    Most alerts first; at most ``MAX_GROUPS`` groups. Under filters that ``alert_groups``
    holds (status, severity, kind, the grouped column itself) the counts come from its few
    rows; the newest of each group shown is then one index probe. Other filters (another
    column, time, text, assignee) bound the alerts through their own index and group them.
    """
    column = GROUPS[by]
    with db.read() as conn:
        rows: Sequence[Any]
        if _counted_in_groups(where, by):
            rows = _groups_from_counts(conn, where, by)
        else:
            rows = conn.execute(
                select(column.label("value"), func.count().label("n"),
                       func.max(alerts.c.severity).label("severity"),
                       func.max(alerts.c.last_seen).label("last_seen"))
                .where(and_(True, *_conditions(where, conn)))
                .group_by(column)
                .order_by(func.count().desc(), func.max(alerts.c.severity).desc(), column)
                .limit(MAX_GROUPS)
            ).all()
        return [
            {"value": row.value, "count": row.n,
             "severity": Severity.from_rank(row.severity).value,
             "last_seen": row.last_seen.isoformat() if isinstance(row.last_seen, datetime)
             else str(row.last_seen)}
            for row in rows
        ]


def _counted_in_groups(where: AlertFilter, by: str) -> bool:
    """Whether ``alert_groups`` alone answers ``where`` for grouping ``by``."""
    others = {"host": where.host, "account": where.account, "rule": where.rule_id}
    others.pop(by)
    return not (any(others.values()) or where.assignee or where.since or where.until
                or where.text)


def _groups_from_counts(conn: Connection, where: AlertFilter, by: str) -> Sequence[Any]:
    g = alert_groups.c
    value = {"host": where.host, "account": where.account, "rule": where.rule_id}[by]
    total = cast(func.sum(g.alerts), BigInteger)
    groups = (
        select(g.value, total.label("n"), func.max(g.severity).label("severity"))
        .where(g.dimension == by,
               *one_of((g.status, where.statuses), (g.severity, where.severities),
                       (g.kind, where.kinds)),
               *equal_to((g.value, value)),
               *([] if where.min_severity is None else [g.severity >= where.min_severity]))
        .group_by(g.value)
        .order_by(total.desc(), func.max(g.severity).desc(), g.value)
        .limit(MAX_GROUPS)
        .subquery()
    )
    column = GROUPS[by]
    conditions = _conditions(where, conn)

    def newest(match: Any) -> Any:
        return (select(alerts.c.last_seen).where(match, *conditions)
                .order_by(alerts.c.last_seen.desc()).limit(1).scalar_subquery())

    # Two probes so each compares with plain = or IS NULL, which an index answers.
    last_seen = func.coalesce(newest(column == groups.c.value),
                              newest(and_(column.is_(None), groups.c.value.is_(None))))
    return conn.execute(
        select(groups.c.value, groups.c.n, groups.c.severity, last_seen.label("last_seen"))
        .order_by(groups.c.n.desc(), groups.c.severity.desc(), groups.c.value)
    ).all()


def count_alerts(db: Database, where: AlertFilter) -> dict[str, dict[str, int]]:
    """Counts of the filtered alerts by status and by severity.

    Under filters ``alert_groups`` holds (status, severity, kind and at most one of host,
    account, rule) from its few rows: every alert is in one of its buckets per dimension.
    Otherwise the filtered alerts are counted through their filter's index.
    """
    c = alerts.c
    by_status = dict.fromkeys(STATUSES, 0)
    by_severity = {s.value: 0 for s in Severity}
    dimension = next((by for by in ("rule", "account", "host") if _counted_in_groups(where, by)),
                     None)
    with db.read() as conn:
        query: Any
        if dimension is not None:
            g = alert_groups.c
            value = {"host": where.host, "account": where.account, "rule": where.rule_id}
            query = (
                select(g.status, g.severity, cast(func.sum(g.alerts), BigInteger))
                .where(g.dimension == dimension,
                       *one_of((g.status, where.statuses), (g.severity, where.severities),
                               (g.kind, where.kinds)),
                       *equal_to((g.value, value[dimension])),
                       *([] if where.min_severity is None else [g.severity >= where.min_severity]))
                .group_by(g.status, g.severity)
            )
        else:
            query = (
                select(c.status, c.severity, func.count())
                .where(and_(True, *_conditions(where, conn)))
                # Under the kind filter, grouped by kind first: SQLite then reads the kind
                # index alone; grouped by severity and status only, it walks the whole status
                # index to skip a sort once the statistics say most alerts share one status.
                .group_by(*((c.kind,) if where.kinds else ()), c.severity, c.status)
            )
        for status, severity, n in conn.execute(query):
            by_status[status] = by_status.get(status, 0) + n
            by_severity[Severity.from_rank(severity).value] += n
    return {"status": by_status, "severity": by_severity}


def get_alert(db: Database, alert_id: int) -> dict[str, Any] | None:
    with db.read() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
    return None if row is None else public(row._mapping)


def alert_event_ids(db: Database, alert_id: int, limit: int = 100) -> list[str]:
    """The ids of the alert's newest stored events (those retention has not pruned)."""
    query = (
        select(events.c.id)
        .join(alert_events, alert_events.c.event_id == events.c.id)
        .where(alert_events.c.alert_id == alert_id)
        .order_by(events.c.time.desc(), events.c.id.desc())
        .limit(limit)
    )
    with db.read() as conn:
        return [row.id for row in conn.execute(query)]


def alert_of_event(db: Database, event_id: str) -> int | None:
    with db.read() as conn:
        return conn.execute(
            select(alert_events.c.alert_id).where(alert_events.c.event_id == event_id)
        ).scalar()


def changes_since(db: Database, cursor: int, limit: int = 1000) -> list[AlertChange]:
    """Feed entries with ids above ``cursor``, oldest first; resume from the last id returned.

    Ids are assigned in commit order (see ``collector.alerts.grouping``), so a
    reader that stores the last id it handled and resumes from it misses nothing.
    """
    with db.read() as conn:
        return read_changes(conn, cursor, limit)


def read_changes(conn: Connection, cursor: int, limit: int = 1000) -> list[AlertChange]:
    """``changes_since`` inside the caller's transaction."""
    c = alert_changes.c
    query = (
        select(c.id, c.alert_id, c.change, c.at).where(c.id > cursor).order_by(c.id).limit(limit)
    )
    return [AlertChange(row.id, row.alert_id, row.change, row.at) for row in conn.execute(query)]


def latest_change(db: Database) -> int:
    """The newest feed id (0 when there is none): where a reader that wants only news starts."""
    with db.read() as conn:
        return int(
            conn.execute(select(func.coalesce(func.max(alert_changes.c.id), 0))).scalar_one()
        )


def public(row: Any) -> dict[str, Any]:
    """An alert as the API and the console show it."""

    def when(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": row["id"],
        "fingerprint": row["fingerprint"],
        "rule_id": row["rule_id"],
        "kind": row["kind"],
        "severity": Severity.from_rank(row["severity"]).value,
        "host": row["host"],
        "agent_id": row["agent_id"],
        "account": row["account"],
        "title": row["title"],
        "status": row["status"],
        "assignee": row["assignee"],
        "resolution": row["resolution"],
        "resolution_comment": row["resolution_comment"],
        "count": row["count"],
        "first_seen": when(row["first_seen"]),
        "last_seen": when(row["last_seen"]),
        "last_event_id": row["last_event_id"],
        "created_at": when(row["created_at"]),
        "updated_at": when(row["updated_at"]),
        "acknowledged_at": when(row["acknowledged_at"]),
        "closed_at": when(row["closed_at"]),
        "reopened_count": row["reopened_count"],
    }


# -- changing ------------------------------------------------------------------------------


def _text(value: str | None, what: str, required: bool) -> str | None:
    value = (value or "").strip()
    if required and not value:
        raise AlertError(f"{what}_required", f"a {what} is required")
    if len(value) > MAX_COMMENT:
        raise AlertError(f"{what}_too_long", f"the {what} is longer than {MAX_COMMENT} characters")
    return value or None


def transition(
    db: Database,
    alert_ids: Sequence[int],
    action: str,
    actor: Actor,
    *,
    assignee: str | None = None,
    resolution: str | None = None,
    comment: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> list[Outcome]:
    """Apply ``action`` to every alert in ``alert_ids`` in one transaction; one outcome each.

    An alert the action does not apply to (wrong status, unknown id) gets a
    refused outcome and is left alone; the others change. Each change writes
    one audit entry (bulk actions: one per alert) and one feed entry.
    Raises ``AlertError`` when the parameters themselves are wrong.
    """
    if action not in TRANSITIONS:
        raise AlertError("unknown_action", f"{action!r} is not one of {', '.join(TRANSITIONS)}")
    allowed_from, to_status = TRANSITIONS[action]
    values: dict[str, Any] = {}
    note: str | None = None
    if action in ("acknowledge", "assign", "reopen"):
        who = _text(assignee, "assignee", action == "assign") or actor.name
        if len(who) > 100:
            raise AlertError("assignee_too_long", "the assignee is longer than 100 characters")
        values["assignee"] = who
    if action == "close":
        if resolution not in RESOLUTIONS:
            raise AlertError(
                "resolution_invalid", f"the resolution must be one of {', '.join(RESOLUTIONS)}"
            )
        note = _text(comment, "comment", True)
        values.update(resolution=resolution, resolution_comment=note)
    if action in ("reopen", "unacknowledge"):
        note = _text(reason, "reason", True)
    if action == "acknowledge":
        note = _text(comment, "comment", False)
    ids = sorted(set(alert_ids))
    if not ids:
        return []
    now = now or utcnow()
    outcomes: list[Outcome] = []
    with db.write() as conn:
        lock_alerts(conn)
        rows = {
            row.id: row
            for row in conn.execute(
                select(
                    alerts.c.id,
                    alerts.c.status,
                    alerts.c.assignee,
                    alerts.c.fingerprint,
                    alerts.c.acknowledged_at,
                )
                .where(alerts.c.id.in_(ids))
                .with_for_update()
            )
        }
        for alert_id in ids:
            row = rows.get(alert_id)
            if row is None:
                outcomes.append(
                    Outcome(
                        alert_id,
                        False,
                        error="not_found",
                        detail=f"alert {alert_id} does not exist",
                    )
                )
                continue
            if row.status not in allowed_from:
                outcomes.append(
                    Outcome(
                        alert_id,
                        False,
                        row.status,
                        error="invalid_transition",
                        detail=f"alert {alert_id} is {row.status}; {action} needs "
                        f"{' or '.join(sorted(allowed_from))}",
                    )
                )
                continue
            if action == "reopen" and _open_sibling(conn, row.fingerprint, alert_id):
                outcomes.append(
                    Outcome(
                        alert_id,
                        False,
                        row.status,
                        error="newer_alert_open",
                        detail=f"a newer alert with the same fingerprint as {alert_id} is open; "
                        "work on that one",
                    )
                )
                continue
            outcomes.append(_apply(conn, row, action, to_status, values, note, actor, now))
    return outcomes


def _open_sibling(conn: Connection, fingerprint: str, alert_id: int) -> bool:
    return (
        conn.execute(
            select(alerts.c.id)
            .where(
                alerts.c.fingerprint == fingerprint,
                alerts.c.id != alert_id,
                alerts.c.status != "closed",
            )
            .limit(1)
        ).first()
        is not None
    )


def _apply(
    conn: Connection,
    row: Any,
    action: str,
    to_status: str,
    values: dict[str, Any],
    note: str | None,
    actor: Actor,
    now: datetime,
) -> Outcome:
    changes = dict(values, updated_at=now)
    target = to_status or row.status
    changes["status"] = target
    if action == "acknowledge" and row.acknowledged_at is None:
        changes["acknowledged_at"] = now
    if action == "close":
        changes["closed_at"] = now
    if action == "reopen":
        changes.update(
            closed_at=None,
            resolution=None,
            resolution_comment=None,
            reopened_count=alerts.c.reopened_count + 1,
        )
    if action == "unacknowledge":
        changes["assignee"] = None
    conn.execute(update(alerts).where(alerts.c.id == row.id).values(**changes))
    object_id = str(row.id)
    if action == "assign" or (
        action in ("acknowledge", "reopen") and values["assignee"] != row.assignee
    ):
        audit.record(
            conn,
            actor,
            "alert.assign",
            "alert",
            object_id,
            now,
            from_value=row.assignee,
            to_value=values["assignee"],
        )
    if action != "assign":
        to_value = target if action != "close" else f"closed:{values['resolution']}"
        audit.record(
            conn,
            actor,
            f"alert.{action}",
            "alert",
            object_id,
            now,
            from_value=row.status,
            to_value=to_value,
            reason=note,
        )
    record_change(conn, row.id, "assigned" if action == "assign" else "status_changed", now)
    return Outcome(row.id, True, row.status, target)


def _one(outcomes: list[Outcome]) -> Outcome:
    outcome = outcomes[0]
    if not outcome.ok:
        raise AlertError(outcome.error or "refused", outcome.detail or "refused")
    return outcome


def acknowledge(
    db: Database,
    alert_id: int,
    actor: Actor,
    assignee: str | None = None,
    comment: str | None = None,
) -> Outcome:
    """new → acknowledged; the assignee defaults to the actor."""
    return _one(
        transition(db, [alert_id], "acknowledge", actor, assignee=assignee, comment=comment)
    )


def unacknowledge(db: Database, alert_id: int, actor: Actor, reason: str) -> Outcome:
    """acknowledged → new (e.g. the router's acknowledgement deadline passed); needs a reason."""
    return _one(transition(db, [alert_id], "unacknowledge", actor, reason=reason))


def start(db: Database, alert_id: int, actor: Actor) -> Outcome:
    """acknowledged → in_progress."""
    return _one(transition(db, [alert_id], "start", actor))


def close(db: Database, alert_id: int, actor: Actor, resolution: str, comment: str) -> Outcome:
    """Any open status → closed, with a resolution from ``RESOLUTIONS`` and a comment."""
    return _one(transition(db, [alert_id], "close", actor, resolution=resolution, comment=comment))


def reopen(
    db: Database, alert_id: int, actor: Actor, reason: str, assignee: str | None = None
) -> Outcome:
    """closed → acknowledged (assignee defaults to the actor); needs a reason."""
    return _one(transition(db, [alert_id], "reopen", actor, reason=reason, assignee=assignee))


def assign(db: Database, alert_id: int, actor: Actor, assignee: str) -> Outcome:
    """Hand an acknowledged or in-progress alert to someone else."""
    return _one(transition(db, [alert_id], "assign", actor, assignee=assignee))
