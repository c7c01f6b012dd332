"""Notification groups: alerts that take one route and share its ``group_by`` labels.

An alert joins its group when it is routed; the group is flushed as one
message after the route's group wait, then at most once a group interval while
new alerts join, and again every repeat interval while any is unanswered.
Silences and inhibitions are applied at flush time, so an alert that explains
another (an expired contract, a silent agent) mutes it if it arrives within
the group wait.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, and_, bindparam, delete, insert, select, update

from collector.notify.outbox import enqueue
from collector.routing import silences as silence_store
from collector.routing.duty import DutyStaff, on_duty
from collector.routing.escalation import start_chain
from collector.routing.matching import Context, alert_labels, matches
from collector.routing.messages import Links, alert_rows, compose
from collector.routing.policy import Matchers, Route
from collector.store.database import Database
from collector.store.tables import alerts, notify_group_alerts, notify_groups

#: Alert statuses a group still speaks of.
OPEN: Final = ("new", "acknowledged", "in_progress")
BATCH: Final = 1000
FLUSH_CHUNK: Final = 200


def group_key(route: Route, labels: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The group an alert with ``labels`` joins on ``route``: its key and grouping labels."""
    grouped: dict[str, str] = {name: labels.get(name, "") for name in route.group_by}
    digest = hashlib.sha256(json.dumps([route.name, route.receiver, grouped],
                                       ensure_ascii=False, sort_keys=True).encode()).hexdigest()
    return digest[:64], grouped


def join_groups(conn: Connection, ctx: Context,
                joins: list[tuple[Route, Mapping[str, str], int]]) -> None:
    """Add each ``(route, labels, alert id)`` to its group on its route, creating the group or
    bringing its flush forward to what the group wait or group interval allows.

    A constant number of statements for the whole list, not per alert: a batch of events
    touches tens of alerts, and per-alert round trips were a fifth of PostgreSQL's ingest.
    """
    if not joins:
        return
    now = ctx.now
    g = notify_groups.c
    keyed = [(*group_key(route, labels), route, alert_id) for route, labels, alert_id in joins]
    keys = sorted({key for key, *_ in keyed})
    existing = {row.key: row for row in conn.execute(
        select(g.key, g.flush_at, g.last_flush_at).where(g.key.in_(keys)))}
    created: dict[str, dict[str, Any]] = {}
    moved: dict[str, datetime] = {}
    for key, grouped, route, _alert_id in keyed:
        group = existing.get(key)
        if group is None:
            # Alerts after the first of a new group find it as created here: its flush is
            # already the group wait from now, which is as early as a new member may ask.
            created.setdefault(key, {
                "key": key, "route": route.name, "receiver": route.receiver,
                "labels": grouped, "flush_at": now + timedelta(seconds=route.group_wait_s),
                "last_flush_at": None, "created_at": now})
            continue
        due = now + timedelta(seconds=route.group_wait_s)
        if group.last_flush_at is not None:
            due = max(now, group.last_flush_at + timedelta(seconds=route.group_interval_s))
        current = moved.get(key, group.flush_at)
        if current is None or due < current:
            moved[key] = due
    if created:
        conn.execute(insert(notify_groups), list(created.values()))
    if moved:
        conn.execute(update(notify_groups).where(g.key == bindparam("group_key"))
                     .values(flush_at=bindparam("due")),
                     [{"group_key": key, "due": due} for key, due in moved.items()])
    # Only alerts in no group yet come here, and route names are unique: no duplicate.
    conn.execute(insert(notify_group_alerts), [
        {"group_key": key, "alert_id": alert_id, "pending": True, "added_at": now}
        for key, _grouped, _route, alert_id in keyed])


def flush_groups(db: Database, ctx: Context, links: Links) -> datetime | None:
    """Flush every group due at ``ctx.now``; returns when the next one falls due."""
    now = ctx.now
    g = notify_groups.c
    routes = {route.name: route for route in ctx.policy.routes}
    following = (select(g.flush_at).where(g.flush_at.is_not(None)).order_by(g.flush_at)
                 .limit(1))
    while True:
        with db.read() as conn:
            due = conn.execute(select(notify_groups).where(g.flush_at <= now)
                               .order_by(g.flush_at).limit(BATCH)).all()
            if not due:  # the usual pass (one per ingested batch): one read, no duty lookup
                upcoming: datetime | None = conn.execute(following).scalar()
                return upcoming
        staff = on_duty(ctx.policy, db, now)
        for start in range(0, len(due), FLUSH_CHUNK):
            # Many groups per transaction: a commit (an fsync on SQLite) per group was
            # what bounded the flush rate.
            with db.write() as conn:
                active = silence_store.active_in(conn, now)
                for group in due[start:start + FLUSH_CHUNK]:
                    _flush(conn, ctx, links, group, routes.get(group.route), staff, active)
        if len(due) < BATCH:
            break
    with db.read() as conn:
        value: datetime | None = conn.execute(following).scalar()
    return value


def _flush(conn: Connection, ctx: Context, links: Links, group: Any, route: Route | None,
           staff: DutyStaff | None, active: list[silence_store.Silence]) -> None:
    now = ctx.now
    m = notify_group_alerts.c
    members = {r.alert_id: r.pending for r in conn.execute(
        select(m.alert_id, m.pending).where(m.group_key == group.key))}
    rows = alert_rows(conn, members)
    open_rows = [rows[i] for i in sorted(rows) if rows[i].status in OPEN]
    if route is None or not open_rows:
        # The route left the policy, or every alert closed: the group is done.
        conn.execute(delete(notify_group_alerts).where(m.group_key == group.key))
        conn.execute(delete(notify_groups).where(notify_groups.c.key == group.key))
        return
    labels = {row.id: alert_labels(row, ctx) for row in open_rows}
    muted_ids = muted(conn, ctx, labels, active)
    fresh = [row for row in open_rows if members[row.id] and row.id not in muted_ids]
    unanswered = [row for row in open_rows if row.status == "new" and row.id not in muted_ids]
    send = fresh if fresh else unanswered
    if send:
        # A route with a chain addresses its first step's position; one without (an
        # audit copy) only the receiver's fixed addressees.
        escalation = ctx.policy.escalations.get(route.escalation or "")
        position = escalation.steps[0].notify if escalation else None
        message = compose(ctx, links, route.receiver, "group" if fresh else "repeat", send,
                          staff if escalation else None, position, group.key,
                          dict(group.labels))
        enqueue(conn, message, now, [row.id for row in send])
        if escalation is not None and route.escalation is not None:
            for row in fresh:
                start_chain(conn, ctx, row.id, route, escalation)
    repeat = (route.key_period_repeat_interval_s if ctx.key_period
              else route.repeat_interval_s)
    conn.execute(update(notify_group_alerts).where(m.group_key == group.key)
                 .values(pending=False))
    conn.execute(update(notify_groups).where(notify_groups.c.key == group.key).values(
        last_flush_at=now, flush_at=now + timedelta(seconds=max(repeat, 1))))


def muted(conn: Connection, ctx: Context, labels: Mapping[int, Mapping[str, str]],
          active: list[silence_store.Silence]) -> set[int]:
    """Alerts silenced now, or inhibited by an open alert with the same ``equal`` labels."""
    muted_ids = {i for i, values in labels.items()
                 if any(silence_store.covers(s, values) for s in active)}
    for rule in ctx.policy.inhibitions:
        targets = {i: v for i, v in labels.items()
                   if i not in muted_ids and matches(rule.target, v)}
        if not targets:
            continue
        for source in _open_sources(conn, ctx, rule.source):
            for alert_id, values in targets.items():
                if source.id != alert_id and all(
                    alert_labels(source, ctx)[name] == values[name] for name in rule.equal
                ):
                    muted_ids.add(alert_id)
    return muted_ids


def _open_sources(conn: Connection, ctx: Context, matcher: Matchers) -> list[Any]:
    c = alerts.c
    terms = [c.status != "closed"]
    if matcher.rules:
        terms.append(c.rule_id.in_(matcher.rules))
    if matcher.kinds:
        terms.append(c.kind.in_(matcher.kinds))
    if len(terms) == 1:
        return []  # an inhibition whose source names no rule or kind would mute everything
    ids = [row.id for row in conn.execute(select(c.id).where(and_(*terms)).limit(10_000))]
    rows = alert_rows(conn, ids)
    return [row for row in rows.values() if matches(matcher, alert_labels(row, ctx))]
