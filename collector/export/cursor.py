"""Each output's durable place in the store (``export_cursors``) and the reads that follow it.

An output reads ``events`` in ``pk`` order after its ``event_cursor`` and
``alert_changes`` in ``id`` order after its ``alert_cursor``, and moves a
cursor only after the receiver took what lay before it: delivery is at least
once across restarts, and nothing is skipped.

One process at a time sends to an output: it holds the ``export:<name>``
lease (``collector.store.leases``, the same as the alert router's); every
cursor move names the holder and the old cursor, so a process that lost its
lease cannot move it.

Alert change ids are assigned in commit order (``collector.alerts.grouping``).
Event ``pk``s are too on SQLite (one writer, rowid = max + 1), but not on
PostgreSQL, where a sequence hands out numbers before commit: a batch still
committing can hold a ``pk`` lower than one already visible, and a batch
rolled back, or a duplicate skipped by ``ON CONFLICT DO NOTHING``, leaves a
``pk`` that never fills. ``contiguous`` stops at a gap and remembers the
writing transactions in progress just after it saw it (``running_transactions``):
only one of those can still fill it. Once none of them is in progress any
more, a read after that sees whatever they stored, so a gap still there is
passed (on SQLite, where nothing is ever running, on the next pass). A
ceiling (``gap_wait_s``) passes a gap held by a session that stays open for
long (an idle transaction in psql), with a warning in the log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from agent.events import Severity
from collector.export.ecs import AlertChangeRecord
from collector.store import leases
from collector.store.database import Database
from collector.store.tables import alert_changes, alerts, events, export_cursors

#: Most events counted when measuring how far an output is behind (the count stays cheap).
LAG_COUNT_CAP = 1_000_000


@dataclass(frozen=True)
class StoredEvent:
    """One ``events`` row, as the ECS mapping reads it."""

    pk: int
    id: str
    seq: int | None
    time: datetime
    received_at: datetime
    agent_id: str
    host: str
    kind: str
    severity: Severity
    rule_id: str | None
    policy_version: str | None
    summary: str
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Lag:
    events: int
    seconds: float


def ensure_cursor(db: Database, name: str, start: str, now: datetime) -> None:
    """Make the output's row if missing: at the beginning of the store, or at its end."""
    c = export_cursors.c
    with db.read() as conn:
        if conn.execute(select(c.name).where(c.name == name)).first() is not None:
            return
        event_cursor = alert_cursor = 0
        if start == "now":
            event_cursor = conn.execute(
                select(func.coalesce(func.max(events.c.pk), 0))).scalar_one()
            alert_cursor = conn.execute(
                select(func.coalesce(func.max(alert_changes.c.id), 0))).scalar_one()
    with contextlib.suppress(IntegrityError), db.write() as conn:
        conn.execute(insert(export_cursors).values(
            name=name, event_cursor=event_cursor, alert_cursor=alert_cursor, created_at=now))


def lease_name(name: str) -> str:
    """The lease of the output ``name``."""
    return f"export:{name}"


def take_lease(db: Database, name: str, owner: str, now: datetime,
               lease: timedelta) -> Any | None:
    """Take or renew the output's lease; its row when held, None when another process has it."""
    if not leases.take(db, lease_name(name), owner, now, lease):
        return None
    return cursor_row(db, name)


def release_lease(db: Database, name: str, owner: str) -> None:
    leases.release(db, lease_name(name), owner)


def _held(name: str, owner: str) -> Any:
    return leases.held_by(lease_name(name), owner)


def read_events(db: Database, after: int, limit: int) -> list[StoredEvent]:
    c = events.c
    query = (select(c.pk, c.id, c.seq, c.time, c.received_at, c.agent_id, c.host, c.kind,
                    c.severity, c.rule_id, c.policy_version, c.summary, c.evidence)
             .where(c.pk > after).order_by(c.pk).limit(limit))
    with db.read() as conn:
        return [
            StoredEvent(row.pk, row.id, row.seq, row.time, row.received_at, row.agent_id,
                        row.host, row.kind, Severity.from_rank(row.severity), row.rule_id,
                        row.policy_version, row.summary, row.evidence)
            for row in conn.execute(query)
        ]


@dataclass(frozen=True)
class Gap:
    """A missing ``pk``: when it was first seen, and who was running then (PostgreSQL xids)."""

    seen_s: float
    running: frozenset[int]


def running_transactions(db: Database) -> frozenset[int]:
    """Ids of the writing transactions in progress in this database now (PostgreSQL).

    Empty on SQLite (one writer). Other databases of the cluster do not count:
    only this one's sessions insert events. Collector processes share one role,
    whose sessions' ``backend_xid`` that role may read.
    """
    if db.dialect != "postgresql":
        return frozenset()
    with db.read() as conn:
        return frozenset(int(x) for x in conn.execute(text(
            "SELECT backend_xid::text FROM pg_stat_activity "
            "WHERE datname = current_database() AND backend_xid IS NOT NULL")).scalars())


def contiguous(rows: Sequence[StoredEvent], after: int, gaps: dict[int, Gap], *,
               running_before: frozenset[int], running_after: frozenset[int], now_s: float,
               ceiling_s: float) -> tuple[list[StoredEvent], list[int]]:
    """The rows up to the first gap in ``pk`` that a running transaction may still fill.

    ``running_before`` was read before ``rows``, ``running_after`` after them;
    ``gaps`` is kept by the caller between passes. Returns the rows and the
    gaps passed only because they reached ``ceiling_s``.
    """
    expected = after + 1
    forced: list[int] = []
    for index, row in enumerate(rows):
        if row.pk != expected:
            gap = gaps.get(expected)
            if gap is None:
                # Only a read taken after the transactions running now have ended tells.
                gaps[expected] = Gap(now_s, running_after)
                return list(rows[:index]), forced
            if gap.running & running_before:
                if now_s - gap.seen_s < ceiling_s:
                    return list(rows[:index]), forced
                forced.append(expected)
        expected = row.pk + 1
    for passed in [pk for pk in gaps if pk < expected]:
        del gaps[passed]
    return list(rows), forced


def read_alert_changes(db: Database, after: int, limit: int) -> list[AlertChangeRecord]:
    c, a = alert_changes.c, alerts.c
    query = (select(c.id, c.change, c.at, a.id.label("alert_id"), a.kind, a.severity, a.rule_id,
                    a.host, a.agent_id, a.account, a.title, a.status, a.assignee,
                    a.count.label("alert_count"),
                    a.first_seen, a.last_seen)
             .join(alerts, alerts.c.id == c.alert_id)
             .where(c.id > after).order_by(c.id).limit(limit))
    with db.read() as conn:
        return [
            AlertChangeRecord(row.id, row.change, row.at, row.alert_id, row.kind,
                              Severity.from_rank(row.severity), row.rule_id, row.host,
                              row.agent_id, row.account, row.title, row.status, row.assignee,
                              row.alert_count, row.first_seen, row.last_seen)
            for row in conn.execute(query)
        ]


def advance(db: Database, name: str, owner: str, *, feed: str, old: int, new: int,
            sent: int, now: datetime) -> bool:
    """Move one cursor (``event`` or ``alert``) from ``old`` to ``new``; False if lost."""
    c = export_cursors.c
    column = c.event_cursor if feed == "event" else c.alert_cursor
    values: dict[str, Any] = {column.key: new, "sent": c.sent + sent}
    if sent:
        values["last_sent_at"] = now
    with db.write() as conn:
        moved = conn.execute(update(export_cursors)
                             .where(c.name == name, _held(name, owner), column == old)
                             .values(**values)).rowcount
    return bool(moved == 1)


def record_failure(db: Database, name: str, owner: str, error: str, now: datetime) -> None:
    c = export_cursors.c
    with db.write() as conn:
        conn.execute(update(export_cursors).where(c.name == name, _held(name, owner))
                     .values(failed=c.failed + 1, last_error=error[:500], last_error_at=now))


def set_lagging(db: Database, name: str, owner: str, since: datetime | None) -> bool:
    c = export_cursors.c
    with db.write() as conn:
        return bool(conn.execute(update(export_cursors).where(c.name == name, _held(name, owner))
                                 .values(lagging_since=since)).rowcount == 1)


def measure_lag(db: Database, event_cursor: int, now: datetime) -> Lag:
    """Events stored after the cursor (up to ``LAG_COUNT_CAP``), and the oldest one's age."""
    c = events.c
    with db.read() as conn:
        behind = select(c.pk).where(c.pk > event_cursor).limit(LAG_COUNT_CAP).subquery()
        count = conn.execute(select(func.count()).select_from(behind)).scalar_one()
        oldest = conn.execute(select(c.received_at).where(c.pk > event_cursor)
                              .order_by(c.pk).limit(1)).scalar()
    seconds = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return Lag(int(count), seconds)


def cursor_row(db: Database, name: str) -> Any | None:
    with db.read() as conn:
        return conn.execute(select(export_cursors).where(export_cursors.c.name == name)).first()


def cursor_rows(db: Database) -> list[Any]:
    with db.read() as conn:
        return list(conn.execute(select(export_cursors).order_by(export_cursors.c.name)))
