"""Events: the ingest transaction that stores a batch, and the keyset query that reads them back.

Storing one batch, in one transaction (nothing is acknowledged before commit):

1. lock the agent's row (PostgreSQL ``FOR UPDATE``; SQLite's writer lock is
   already held) and refuse if the agent was revoked meanwhile;
2. insert every event with ``ON CONFLICT DO NOTHING RETURNING id`` as
   multi-row VALUES statements: the returned ids are new; of the rest, those
   this agent already stored are duplicates, and any other holds a seq this
   agent already used for another event, which refuses the batch
   (``InvalidEventsError``, 422 with the events' indexes; nothing is stored);
3. plan and write sequence gaps from the new events' seqs;
4. update the agent: ``max_seq``, ``last_seen_at``, clear ``silent_since``, and
   the newest heartbeat if its seq is past the last one applied;
5. group the new events into alerts (``collector.alerts.grouping``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from sqlalchemy import Connection, Insert, and_, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from agent.events import Event, HeartbeatEvidence, Severity
from collector.alerts.grouping import (
    ALERT_MIN_SEVERITY,
    AlertChange,
    account_of,
    group_events,
)
from collector.errors import InvalidEventsError, RefusedError
from collector.store.database import Database
from collector.store.filters import SortOrder, containing, equal_to, one_of, sort_orders, within
from collector.store.fulltext import contains, event_text_condition, newest_event_matches
from collector.store.gaps import apply_gaps, load_open_gaps, plan_gaps
from collector.store.tables import (
    agents,
    alert_events,
    alerts,
    events,
    sqlite_utc_text,
)


@dataclass(frozen=True)
class StoredBatch:
    accepted: list[uuid.UUID]
    duplicates: list[uuid.UUID]
    gaps_opened: int = 0
    alert_changes: list[AlertChange] = field(default_factory=list)


@dataclass(frozen=True)
class EventFilter:
    """Filters of the event listing; every value reaches SQL as a bound parameter."""

    kinds: Sequence[str] = ()
    severities: Sequence[int] = ()
    min_severity: int | None = None
    host: str | None = None
    agent_id: str | None = None
    rule_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: Statuses of the alert an event belongs to; events without an alert never match.
    statuses: Sequence[str] = ()
    #: The evidence's ``account`` field.
    account: str | None = None
    #: In the summary, host or rule id (case-insensitive, no wildcards).
    text: str | None = None


#: Rows per multi-row INSERT on SQLite: 13 parameters each stays far below its 32766.
INSERT_CHUNK: Final = 500
_COLUMNS: Final = ("id", "agent_id", "seq", "time", "received_at", "host", "kind", "severity",
                   "rule_id", "policy_version", "summary", "account", "evidence")


@functools.cache
def _sqlite_insert_sql(rows: int) -> str:
    one = "(" + ",".join("?" * len(_COLUMNS)) + ")"
    values = ",".join([one] * rows)
    # Only constant column names and placeholders are formatted in; values are bound.
    return f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES {values} ON CONFLICT DO NOTHING RETURNING id"  # noqa: S608, E501 (constant names and placeholders)


#: PostgreSQL takes the whole batch as one JSON document, which orjson encodes in one call
#: (the evidence within it, so it is encoded once) and the server unpacks with
#: ``jsonb_to_recordset``. The statement is the same short text for any batch: psycopg
#: parses its placeholders once and the server plans it once. (A multi-row VALUES of 500
#: rows was parsed anew each time, in Python, by psycopg; one array per column was
#: dumped element by element, in Python too; either cost more than the insert itself.)
_PG_INSERT_SQL: Final = (
    "INSERT INTO events (id, agent_id, seq, time, received_at, host, kind, severity, rule_id,"
    " policy_version, summary, account, evidence)"
    " SELECT u.id, %s, u.seq, u.time, %s, u.host, u.kind, u.severity, u.rule_id,"
    " u.policy_version, u.summary, u.account, u.evidence"
    " FROM jsonb_to_recordset(CAST(%s AS jsonb)) AS u(id varchar, seq bigint, time timestamptz,"
    " host varchar, kind varchar, severity smallint, rule_id varchar, policy_version varchar,"
    " summary varchar, account varchar, evidence jsonb)"
    " ON CONFLICT DO NOTHING RETURNING id"
)


def insert_new_events(
    conn: Connection, dialect: str, agent_id: str, batch: Sequence[Event], now: datetime
) -> set[str]:
    """Insert the batch, skipping rows that collide with stored ones; return the ids inserted.

    A row collides when the agent already stored its id or its seq. The hot
    path of ingest, one statement per batch with values already in the
    driver's types (the per-value type processing of SQLAlchemy's Core path
    cost more than the database's own work): on PostgreSQL an ``INSERT ...
    SELECT FROM jsonb_to_recordset(<the batch>)``, on SQLite ``INSERT ... VALUES
    (...), (...)`` per ``INSERT_CHUNK`` rows; both ``ON CONFLICT DO NOTHING
    RETURNING id``.
    """
    if dialect != "sqlite":
        document = orjson.dumps([
            {"id": event.id, "seq": event.seq, "time": event.time, "host": event.host,
             "kind": event.kind, "severity": event.severity.rank, "rule_id": event.rule_id,
             "policy_version": event.policy_version, "summary": event.summary,
             "account": account_of(event), "evidence": event.evidence}
            for event in batch
        ]).decode()
        result = conn.exec_driver_sql(_PG_INSERT_SQL, (agent_id, now, document))
        return {row[0] for row in result}
    received = sqlite_utc_text(now.astimezone(UTC))
    params: list[Any] = []
    for event in batch:
        params += (
            str(event.id), agent_id, event.seq, sqlite_utc_text(event.time.astimezone(UTC)),
            received, event.host, event.kind, event.severity.rank, event.rule_id,
            event.policy_version, event.summary, account_of(event),
            orjson.dumps(event.evidence).decode(),
        )
    width = len(_COLUMNS)
    inserted: set[str] = set()
    for start in range(0, len(batch), INSERT_CHUNK):
        rows = min(INSERT_CHUNK, len(batch) - start)
        chunk = tuple(params[start * width:(start + rows) * width])
        result = conn.exec_driver_sql(_sqlite_insert_sql(rows), chunk)
        inserted.update(row[0] for row in result)
    return inserted


def insert_ignoring_duplicates(dialect: str) -> Insert:
    """``INSERT INTO events ... ON CONFLICT (agent_id, id) DO NOTHING RETURNING id``."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt: Insert = module.insert(events).on_conflict_do_nothing(
        index_elements=["agent_id", "id"])
    return stmt.returning(events.c.id)


def _row(event: Event, agent_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": str(event.id), "agent_id": agent_id, "seq": event.seq, "time": event.time,
        "received_at": now, "host": event.host, "kind": event.kind,
        "severity": event.severity.rank, "rule_id": event.rule_id,
        "policy_version": event.policy_version, "summary": event.summary,
        "account": account_of(event), "evidence": event.evidence,
    }


def store_batch(db: Database, agent_id: str, batch: Sequence[Event], now: datetime) -> StoredBatch:
    """Store one agent's batch idempotently; see the module docstring for the steps."""
    with db.write() as conn:
        # 1. the agent, locked against concurrent batches and revocation
        agent = conn.execute(
            select(agents.c.max_seq, agents.c.last_heartbeat_seq, agents.c.revoked_at)
            .where(agents.c.id == agent_id)
            .with_for_update()
        ).first()
        if agent is None or agent.revoked_at is not None:
            raise RefusedError("agent_revoked", "the agent was revoked and must be re-enrolled")
        # 2. events
        inserted = insert_new_events(conn, db.dialect, agent_id, batch, now)
        if len(inserted) < len(batch):
            _refuse_reused_seqs(conn, agent_id, batch, inserted, agent.max_seq or 0)
        accepted: list[uuid.UUID] = []
        duplicates: list[uuid.UUID] = []
        seen: set[uuid.UUID] = set()
        new_events: list[Event] = []
        for event in batch:
            if event.id in seen:
                continue
            seen.add(event.id)
            if str(event.id) in inserted:
                accepted.append(event.id)
                new_events.append(event)
            else:
                duplicates.append(event.id)
        # 3. sequence gaps
        seqs = [event.seq for event in new_events if event.seq is not None]
        max_seq = agent.max_seq or 0
        plan = plan_gaps(max_seq, seqs, ())
        if seqs and min(seqs) <= max_seq:
            open_gaps = load_open_gaps(conn, agent_id, min(seqs), max_seq)
            plan = plan_gaps(max_seq, seqs, open_gaps)
        else:
            open_gaps = []
        apply_gaps(conn, agent_id, plan, open_gaps, now)
        # 4. the agent row
        values: dict[str, Any] = {"last_seen_at": now, "silent_since": None}
        if plan.max_seq != max_seq:
            values["max_seq"] = plan.max_seq
        values.update(_heartbeat_values(new_events, agent.last_heartbeat_seq))
        conn.execute(update(agents).where(agents.c.id == agent_id).values(**values))
        # 5. alerts
        changes = group_events(conn, agent_id, new_events, now)
    return StoredBatch(accepted, duplicates, len(plan.opened), changes)


def _refuse_reused_seqs(
    conn: Connection, agent_id: str, batch: Sequence[Event], inserted: set[str], max_seq: int
) -> None:
    """Raise InvalidEventsError for events skipped because their seq, not their id, was taken.

    Each item carries ``max_seq``, the agent's highest stored seq: an agent whose spool
    restarted its numbering renumbers its waiting events above it and sends them again.
    """
    skipped = {str(event.id) for event in batch} - inserted
    stored: set[str] = set()
    ids = sorted(skipped)
    for start in range(0, len(ids), INSERT_CHUNK):
        stored.update(conn.execute(
            select(events.c.id).where(events.c.agent_id == agent_id,
                                      events.c.id.in_(ids[start:start + INSERT_CHUNK]))
        ).scalars())
    items = [
        {"index": index, "loc": ["seq"], "max_seq": max_seq,
         "msg": f"seq {event.seq} is already stored for this agent under another event id"}
        for index, event in enumerate(batch)
        if str(event.id) in skipped and str(event.id) not in stored
    ]
    if items:
        raise InvalidEventsError(items)


def _heartbeat_values(new_events: Sequence[Event], last_seq: int | None) -> dict[str, Any]:
    """Agent columns from the newest heartbeat in the batch, if it is newer than the stored one."""
    newest: Event | None = None
    for event in new_events:
        if event.kind == "agent.heartbeat" and event.seq is not None and (
            newest is None or (newest.seq or 0) < event.seq
        ):
            newest = event
    if newest is None or newest.seq is None or (last_seq is not None and newest.seq <= last_seq):
        return {}
    beat = HeartbeatEvidence.model_validate(newest.evidence)
    return {
        "last_heartbeat": newest.evidence,
        "last_heartbeat_seq": newest.seq,
        "heartbeat_interval_s": beat.interval_s,
        "agent_version": beat.agent_version,
        "policy_version": beat.policy_version,
    }


def insert_event(conn: Connection, dialect: str, event: Event, now: datetime) -> bool:
    """Insert one collector-made event and group it into its alert; False when already stored."""
    agent_id = str(event.agent_id)
    result = conn.execute(insert_ignoring_duplicates(dialect), [_row(event, agent_id, now)])
    if not result.scalars().all():
        return False
    group_events(conn, agent_id, [event], now)
    return True


def event_conditions(where: EventFilter, conn: Connection | None = None) -> list[Any]:
    """The WHERE of the event listing and its counts.

    Free text uses the trigram index when ``conn`` is given (it looks at the store),
    a plain ``ILIKE`` otherwise.
    """
    c = events.c
    conditions: list[Any] = [
        *one_of((c.kind, where.kinds), (c.severity, where.severities)),
        *equal_to((c.host, where.host), (c.agent_id, where.agent_id), (c.rule_id, where.rule_id)),
        *within(c.time, where.since, where.until),
    ]
    if where.text:
        conditions.append(event_text_condition(conn, where.text)[0] if conn is not None
                          else containing(where.text, c.summary, c.host, c.rule_id)[0])
    if where.min_severity is not None:
        conditions.append(c.severity >= where.min_severity)
    if where.account:
        conditions.append(c.account == where.account)
    if where.statuses:
        linked = (
            select(alert_events.c.event_id)
            .join(alerts, alerts.c.id == alert_events.c.alert_id)
            .where(alert_events.c.event_id == c.id, alerts.c.status.in_(list(where.statuses)))
        )
        conditions.append(linked.exists())
    return conditions


_LISTED = (events.c.id, events.c.seq, events.c.time, events.c.agent_id, events.c.host,
           events.c.kind, events.c.severity, events.c.rule_id, events.c.policy_version,
           events.c.summary, events.c.evidence, events.c.received_at, events.c.account)


_TIEBREAK = (events.c.time, events.c.id)
#: The listing's orders, by the name the page and the API take (``sort=host``, ``sort=-host``);
#: each is served by an index on its columns.
EVENT_ORDERS: Final[dict[str, SortOrder]] = sort_orders({
    "time": _TIEBREAK,
    "severity": (events.c.severity, *_TIEBREAK),
    "host": (events.c.host, *_TIEBREAK),
    "account": (events.c.account, *_TIEBREAK),
    "kind": (events.c.kind, *_TIEBREAK),
    "rule": (events.c.rule_id, *_TIEBREAK),
    "summary": (events.c.summary, *_TIEBREAK),
})
DEFAULT_EVENT_ORDER: Final = "-time"


def query_events(
    db: Database, where: EventFilter, limit: int, after: Sequence[Any] | None,
    order: SortOrder | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` events in ``order`` (newest first), strictly after the keyset ``after``.

    ``after`` holds the last row's values of the order's columns (``sort_values``).
    """
    order = order or EVENT_ORDERS[DEFAULT_EVENT_ORDER]
    with db.read() as conn:
        conditions = event_conditions(where, conn)
        if after is not None:
            conditions.append(order.after(after, db.dialect))
        query = (
            select(*_LISTED)
            .where(and_(True, *conditions))
            .order_by(*order.order_by())
            .limit(limit)
        )
        return [_public(row._mapping) for row in conn.execute(query)]


def sort_values(row: dict[str, Any], order: SortOrder) -> list[Any]:
    """The values of ``order``'s columns in a listed row, for the next page's cursor."""
    return [Severity(row["severity"]).rank if column.name == "severity" else row[column.name]
            for column in order.columns]


#: Counts per severity stop here: a duty officer needs "more than 1,000", not the exact
#: figure, and counting a million rows on every page view would cost more than the page.
COUNT_CAP: Final = 1_000
#: Under free text that matches much of the store, counts are taken over at most this many
#: of the newest matches, and shown as "at least".
TEXT_COUNT_WINDOW: Final = 5_000


def count_events(db: Database, where: EventFilter, cap: int = COUNT_CAP) -> dict[str, int]:
    """How many events match ``where``, by severity, each at most ``cap`` (+1 means more).

    One bounded query per severity the filter allows, so the work is at most
    ``cap`` index entries each, however large the store (each single filter has
    a ``(column, severity, time)`` index for it). Free text is counted over its
    newest ``TEXT_COUNT_WINDOW`` matches: by arrival through SQLite's text index
    (``_count_matches``), or by time (``_count_newest``) on PostgreSQL, whose
    index yields matches unordered, and for text too short for trigrams.
    """
    c = events.c
    counts = {s.value: 0 for s in Severity}
    with db.read() as conn:
        if where.text:
            window = newest_event_matches(conn, where.text, TEXT_COUNT_WINDOW)
            if window is None:
                return _count_newest(conn, [*event_conditions(replace(where, text=None)),
                                            contains(conn, "events", where.text)], cap)
            newest, more = window
            return _count_matches(conn, [*event_conditions(replace(where, text=None)), newest],
                                  cap, more)
        conditions = event_conditions(where, conn)
        for severity in Severity:
            if (where.severities and severity.rank not in where.severities) or (
                    where.min_severity is not None and severity.rank < where.min_severity) or (
                    where.statuses and severity.rank < ALERT_MIN_SEVERITY.rank):
                continue  # excluded by the filter; events below it never belong to an alert
            matching = (select(literal(1)).where(c.severity == severity.rank, *conditions)
                        .limit(cap + 1).subquery())
            counts[severity.value] = conn.execute(
                select(func.count()).select_from(matching)).scalar_one()
    return counts


def _count_matches(conn: Connection, conditions: list[Any], cap: int,
                   partial: bool) -> dict[str, int]:
    """Counts by severity of the text index's newest ``TEXT_COUNT_WINDOW`` matches, in one pass.

    Exact when the text matches no more events than that; otherwise (``partial``)
    each count is a lower bound, reported as ``cap + 1`` when it reached ``cap``
    and with the key ``partial`` set, as ``_count_newest`` does. The work is one
    row lookup per match in the window, however common the text.
    """
    counts = {s.value: 0 for s in Severity}
    for rank, n in conn.execute(select(events.c.severity, func.count()).where(*conditions)
                                .group_by(events.c.severity)):
        counts[Severity.from_rank(rank).value] = min(n, cap + 1)
    if partial:
        counts["partial"] = 1
    return counts


def _count_newest(conn: Connection, conditions: list[Any], cap: int) -> dict[str, int]:
    """Counts by severity over the newest ``TEXT_COUNT_WINDOW`` matches, as one bounded scan.

    Per-severity counts under common text would each scan until ``cap`` matches
    of that severity, which for a rare severity means the whole store. When the
    window fills, every count is a lower bound: it is reported as ``cap + 1``
    ("more than") when it reached ``cap``, and otherwise as found, with the key
    ``partial`` set so the page can say "at least".
    """
    newest = (select(events.c.severity).where(*conditions)
              .order_by(events.c.time.desc()).limit(TEXT_COUNT_WINDOW).subquery())
    counts = {s.value: 0 for s in Severity}
    total = 0
    for rank, n in conn.execute(select(newest.c.severity, func.count()).group_by(
            newest.c.severity)):
        counts[Severity.from_rank(rank).value] = min(n, cap + 1)
        total += n
    if total >= TEXT_COUNT_WINDOW:
        counts["partial"] = 1
    return counts


def get_event(db: Database, event_id: str) -> dict[str, Any] | None:
    """The event with this id; of two agents' events sharing it, the first stored."""
    with db.read() as conn:
        row = conn.execute(
            select(*_LISTED).where(events.c.id == event_id).order_by(events.c.pk).limit(1)
        ).first()
    return None if row is None else _public(row._mapping)


def _public(row: Any) -> dict[str, Any]:
    """An event as the API shows it: the wire contract's fields plus received_at."""
    return {
        "id": row["id"], "seq": row["seq"], "time": row["time"].isoformat(),
        "agent_id": row["agent_id"], "host": row["host"], "kind": row["kind"],
        "severity": Severity.from_rank(row["severity"]).value, "rule_id": row["rule_id"],
        "policy_version": row["policy_version"], "summary": row["summary"],
        "evidence": row["evidence"], "received_at": row["received_at"].isoformat(),
        "account": row["account"],
    }

