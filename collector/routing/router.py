"""The alert router: alert changes in, grouped and escalated notifications out.

``Router.tick(now)`` is one pass, synchronous and driven by the clock it is
given (tests walk a fake clock through a key period); ``run()`` is the
collector's background task that calls it whenever the alert feed reports a
change (in process: no polling delay) or something falls due.

One pass, by the process holding the router lease (``router_state``; two
collector processes on PostgreSQL take turns, never both):

1. read the alert change feed from the stored cursor; for each alert, route
   it (first matching route wins, ``continue`` goes on) into notification
   groups, start or stop escalation chains on status changes; the cursor
   moves in the same transaction, so nothing is routed twice or skipped;
2. flush groups whose group wait / group interval / repeat interval is due:
   one message per group with its alerts, silences and inhibitions applied
   at this moment (so an expired-contract alert arriving within the group
   wait mutes the off-hours alert it explains);
3. advance escalation chains whose wait ran out (on-duty, backup, duty
   leader...); acknowledged alerts left alone too long are unacknowledged
   through the alert service, which makes them escalate again;
4. send what the outbox has due (``collector.notify.outbox``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import structlog
from sqlalchemy import Connection, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from agent.calendar_cn import WorkCalendar, local_time
from agent.events import Severity, utcnow
from agent.policy.alerting import AlertingPolicy, Escalation, Matchers, Route, Window
from collector.alerts import service
from collector.notify.config import ChannelSettings
from collector.notify.message import AlertItem, Contact, Escalated, Message, position_label
from collector.notify.outbox import Outbox, enqueue
from collector.policy.current import CurrentPolicy
from collector.routing import silences as silence_store
from collector.routing.duty import DutyStaff, on_duty
from collector.routing.links import ack_url
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.tables import (
    agents,
    alerts,
    escalations,
    notify_group_alerts,
    notify_groups,
    router_state,
)

log = structlog.get_logger("collector.alerting")

ROUTER: Final = "router"
LEASE: Final = timedelta(seconds=20)
#: Longest sleep between passes: lease renewal, and the backstop for missed wake-ups.
MAX_SLEEP_S: Final = 1.0
ROUTER_ACTOR: Final = Actor("router", via="router")
OPEN: Final = ("new", "acknowledged", "in_progress")
BATCH: Final = 1000
FLUSH_CHUNK: Final = 200


class LeaseLost(Exception):
    """Another process holds the router lease now; this pass stops."""


@dataclass(frozen=True)
class Context:
    """What one pass knows: the policy, the calendar and the moment."""

    policy: AlertingPolicy
    calendar: WorkCalendar
    now: datetime
    accounts: Any = None  # the accounts policy, for account classes

    @property
    def key_period(self) -> bool:
        return self.calendar.key_period(local_time(self.now).date()) is not None

    def in_window(self, window: Window) -> bool:
        local = local_time(self.now)
        day = local.date()
        if window.start is not None and window.end is not None:
            clock = local.time()
            if window.end <= window.start:  # spans midnight: early hours belong to yesterday
                if clock < window.end:
                    day -= timedelta(days=1)
                elif clock < window.start:
                    return False
            elif not window.start <= clock < window.end:
                return False
        if window.days and self.calendar.day_kind(day) not in window.days:
            return False
        return not (window.key_period is not None and window.key_period != self.key_period)

    def active(self, inside: list[str], outside: list[str]) -> bool:
        windows = self.policy.windows
        if inside and not any(self.in_window(windows[name]) for name in inside):
            return False
        return not any(self.in_window(windows[name]) for name in outside)


def matches(matchers: Matchers, labels: Mapping[str, str]) -> bool:
    if matchers.kinds and labels["kind"] not in matchers.kinds:
        return False
    if matchers.rules and labels["rule_id"] not in matchers.rules:
        return False
    if matchers.min_severity is not None and (
        Severity(labels["severity"]).rank < matchers.min_severity.rank
    ):
        return False
    if matchers.host_groups and labels["host_group"] not in matchers.host_groups:
        return False
    if matchers.account_classes and labels["account_class"] not in matchers.account_classes:
        return False
    return matchers.key_period is None or (labels["key_period"] == "true") == matchers.key_period


def routes_for(ctx: Context, labels: Mapping[str, str]) -> list[Route]:
    """First match wins; a matched route with ``continue`` lets later routes match too."""
    chosen = []
    for route in ctx.policy.routes:
        if not ctx.active(route.active_in, route.active_outside):
            continue
        if matches(route.match, labels):
            chosen.append(route)
            if not route.continue_:
                break
    return chosen


def group_key(route: Route, labels: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    grouped: dict[str, str] = {name: labels.get(name, "") for name in route.group_by}
    digest = hashlib.sha256(json.dumps([route.name, route.receiver, grouped],
                                       ensure_ascii=False, sort_keys=True).encode()).hexdigest()
    return digest[:64], grouped


def alert_labels(row: Any, ctx: Context) -> dict[str, str]:
    account_class = ""
    if row.account and ctx.accounts is not None:
        resolved = ctx.accounts.resolve(row.account)
        account_class = resolved.role_name if resolved is not None else "staff"
    return {
        "kind": row.kind,
        "severity": Severity.from_rank(row.severity).value,
        "rule_id": row.rule_id or row.kind,
        "host": row.host,
        "host_group": row.host_group or "",
        "account": row.account or "",
        "account_class": account_class,
        "fingerprint": row.fingerprint,
        "key_period": "true" if ctx.key_period else "false",
    }


def _alert_rows(conn: Connection, ids: Iterable[int]) -> dict[int, Any]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = (
        select(alerts, agents.c.group.label("host_group"))
        .select_from(alerts.outerjoin(agents, agents.c.id == alerts.c.agent_id))
        .where(alerts.c.id.in_(wanted))
    )
    return {row.id: row for row in conn.execute(query)}


@dataclass
class Router:
    db: Database
    policies: CurrentPolicy
    channels: Mapping[str, ChannelSettings]
    link_key: bytes
    base_url: str
    clock: Callable[[], datetime] = utcnow
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}/{uuid.uuid4().hex[:8]}")
    outbox: Outbox | None = None
    #: Set by ``run`` so ingest (or a test) can wake the router at once.
    feed: Any = None

    def __post_init__(self) -> None:
        if self.outbox is None:
            self.outbox = Outbox(self.db, self.channels, self.owner)

    # -- the lease ---------------------------------------------------------------------------

    def _lease(self, now: datetime) -> bool:
        """Take or renew the router lease; False when another process holds it."""
        c = router_state.c
        with self.db.read() as conn:
            exists = conn.execute(select(c.name).where(c.name == ROUTER)).first() is not None
        if not exists:
            # A first start routes what happens from now on, not every alert ever stored.
            start = service.latest_change(self.db)
            with contextlib.suppress(IntegrityError), self.db.write() as conn:
                conn.execute(insert(router_state).values(
                    name=ROUTER, owner=None, lease_until=None, cursor=start))
        with self.db.write() as conn:
            taken = conn.execute(
                update(router_state)
                .where(c.name == ROUTER,
                       or_(c.owner == self.owner, c.owner.is_(None), c.lease_until < now))
                .values(owner=self.owner, lease_until=now + LEASE)
            ).rowcount
        return taken == 1

    def close(self) -> None:
        """Hand the lease over at once (another process need not wait for it to run out)."""
        assert self.outbox is not None  # noqa: S101
        self.outbox.close()
        with contextlib.suppress(Exception):
            self.release()

    def release(self) -> None:
        c = router_state.c
        with self.db.write() as conn:
            conn.execute(update(router_state).where(c.name == ROUTER, c.owner == self.owner)
                         .values(owner=None, lease_until=None))

    # -- one pass ----------------------------------------------------------------------------

    def context(self, now: datetime) -> Context | None:
        policies = self.policies.get()
        if policies is None:
            return None
        document = policies.section("alerting")
        if not isinstance(document, AlertingPolicy):
            return None
        return Context(document, document.calendar.work_calendar(), now,
                       policies.section("accounts"))

    def tick(self, now: datetime | None = None) -> datetime | None:
        """One pass at ``now``; returns when the next thing falls due (None: nothing queued)."""
        now = now or self.clock()
        if not self._lease(now):
            return None
        ctx = self.context(now)
        wake: list[datetime] = []
        if ctx is not None:
            try:
                while self.route_changes(ctx):
                    pass
            except LeaseLost:
                return None
            wake += [t for t in (self.flush_groups(ctx), self.escalate(ctx)) if t is not None]
            receivers = ctx.policy.receivers
        else:
            receivers = {}
        assert self.outbox is not None  # noqa: S101 - set in __post_init__
        sent_next = self.outbox.send_due(now, receivers)
        if sent_next is not None:
            wake.append(sent_next)
        return min(wake) if wake else None

    # -- 1. routing --------------------------------------------------------------------------

    def route_changes(self, ctx: Context, limit: int = 1000) -> int:
        """Route one batch of feed entries; returns how many were read."""
        with self.db.read() as conn:
            cursor = conn.execute(select(router_state.c.cursor)
                                  .where(router_state.c.name == ROUTER)).scalar_one()
        changes = service.changes_since(self.db, cursor, limit)
        if not changes:
            return 0
        with self.db.write() as conn:
            moved = conn.execute(
                update(router_state)
                .where(router_state.c.name == ROUTER, router_state.c.cursor == cursor,
                       router_state.c.owner == self.owner)
                .values(cursor=changes[-1].id)
            ).rowcount
            if moved != 1:
                raise LeaseLost("another router moved the cursor")
            rows = _alert_rows(conn, (change.alert_id for change in changes))
            ids = sorted(rows)
            chains: dict[int, dict[str, Any]] = {}
            for chain in conn.execute(select(escalations).where(escalations.c.alert_id.in_(ids))):
                chains.setdefault(chain.alert_id, {})[chain.route] = chain
            grouped = set(conn.execute(
                select(notify_group_alerts.c.alert_id)
                .where(notify_group_alerts.c.alert_id.in_(ids))).scalars())
            handled: set[int] = set()
            for change in changes:
                row = rows.get(change.alert_id)
                if row is None or change.alert_id in handled:
                    continue
                handled.add(change.alert_id)
                self._route_alert(conn, ctx, row, chains.get(row.id, {}), row.id in grouped)
        return len(changes)

    def _route_alert(self, conn: Connection, ctx: Context, row: Any,
                     chains: Mapping[str, Any], grouped: bool) -> None:
        """Bring the router's state for one alert in line with the alert's current state."""
        now = ctx.now
        if row.status == "closed":
            conn.execute(update(escalations).where(escalations.c.alert_id == row.id)
                         .values(state="closed", next_at=None, updated_at=now))
            conn.execute(delete(notify_group_alerts)
                         .where(notify_group_alerts.c.alert_id == row.id))
            return
        if not grouped and not chains:
            labels = alert_labels(row, ctx)
            for route in routes_for(ctx, labels):
                self._join_group(conn, ctx, route, labels, row.id)
            return
        for chain in chains.values():
            escalation = ctx.policy.escalations.get(chain.chain)
            if escalation is None:
                continue
            if row.status == "new" and chain.state in ("acknowledged", "closed", "stopped"):
                # Unacknowledged again, or re-opened: the chain starts over, now.
                self._notify_step(conn, ctx, row, chain.route, chain.receiver, escalation, 0, 0)
            elif row.status == "acknowledged" and chain.state in ("waiting", "exhausted",
                                                                    "closed"):
                if chain.state == "closed":
                    # Re-opened (closed -> acknowledged): the duty hears of it again at once.
                    self._notify_step(conn, ctx, row, chain.route, chain.receiver, escalation,
                                      0, 0)
                wait = (escalation.key_period_unacknowledged_after_s if ctx.key_period
                        else escalation.unacknowledged_after_s)
                self._set_chain(conn, row.id, chain.route, state="acknowledged",
                                next_at=now + timedelta(seconds=wait), now=now)
            elif row.status == "in_progress" and chain.state != "stopped":
                self._set_chain(conn, row.id, chain.route, state="stopped", next_at=None, now=now)

    def _join_group(self, conn: Connection, ctx: Context, route: Route,
                    labels: Mapping[str, str], alert_id: int) -> None:
        now = ctx.now
        key, grouped = group_key(route, labels)
        g = notify_groups.c
        group = conn.execute(select(g.flush_at, g.last_flush_at).where(g.key == key)).first()
        if group is None:
            conn.execute(insert(notify_groups).values(
                key=key, route=route.name, receiver=route.receiver, labels=grouped,
                flush_at=now + timedelta(seconds=route.group_wait_s), last_flush_at=None,
                created_at=now))
        else:
            due = now + timedelta(seconds=route.group_wait_s)
            if group.last_flush_at is not None:
                due = max(now, group.last_flush_at + timedelta(seconds=route.group_interval_s))
            if group.flush_at is None or due < group.flush_at:
                conn.execute(update(notify_groups).where(g.key == key).values(flush_at=due))
        # Only alerts in no group yet come here, and route names are unique: no duplicate.
        conn.execute(insert(notify_group_alerts).values(
            group_key=key, alert_id=alert_id, pending=True, added_at=now))

    # -- 2. groups ---------------------------------------------------------------------------

    def flush_groups(self, ctx: Context) -> datetime | None:
        now = ctx.now
        g = notify_groups.c
        routes = {route.name: route for route in ctx.policy.routes}
        while True:
            with self.db.read() as conn:
                due = conn.execute(select(notify_groups).where(g.flush_at <= now)
                                   .order_by(g.flush_at).limit(BATCH)).all()
            staff = on_duty(ctx.policy, self.db, now)
            for start in range(0, len(due), FLUSH_CHUNK):
                # Many groups per transaction: a commit (an fsync on SQLite) per group was
                # what bounded the flush rate.
                with self.db.write() as conn:
                    active = silence_store.active_in(conn, now)
                    for group in due[start:start + FLUSH_CHUNK]:
                        self._flush(conn, ctx, group, routes.get(group.route), staff, active)
            if len(due) < BATCH:
                break
        with self.db.read() as conn:
            value: datetime | None = conn.execute(
                select(g.flush_at).where(g.flush_at.is_not(None)).order_by(g.flush_at).limit(1)
            ).scalar()
        return value

    def _flush(self, conn: Connection, ctx: Context, group: Any, route: Route | None,
               staff: DutyStaff | None, active: list[silence_store.Silence]) -> None:
        now = ctx.now
        m = notify_group_alerts.c
        members = {r.alert_id: r.pending for r in conn.execute(
            select(m.alert_id, m.pending).where(m.group_key == group.key))}
        rows = _alert_rows(conn, members)
        open_rows = [rows[i] for i in sorted(rows) if rows[i].status in OPEN]
        if route is None or not open_rows:
            # The route left the policy, or every alert closed: the group is done.
            conn.execute(delete(notify_group_alerts).where(m.group_key == group.key))
            conn.execute(delete(notify_groups).where(notify_groups.c.key == group.key))
            return
        labels = {row.id: alert_labels(row, ctx) for row in open_rows}
        muted = self.muted(conn, ctx, labels, active)
        fresh = [row for row in open_rows if members[row.id] and row.id not in muted]
        unanswered = [row for row in open_rows if row.status == "new" and row.id not in muted]
        send = fresh if fresh else unanswered
        if send:
            # A route with a chain addresses its first step's position; one without (an
            # audit copy) only the receiver's fixed addressees.
            escalation = ctx.policy.escalations.get(route.escalation or "")
            position = escalation.steps[0].notify if escalation else None
            message = self._message(ctx, route.receiver, "group" if fresh else "repeat", send,
                                    staff if escalation else None, position, group.key,
                                    dict(group.labels))
            enqueue(conn, message, now, [row.id for row in send])
            if escalation is not None and route.escalation is not None:
                for row in fresh:
                    self._start_chain(conn, ctx, row.id, route, escalation)
        repeat = (route.key_period_repeat_interval_s if ctx.key_period
                  else route.repeat_interval_s)
        conn.execute(update(notify_group_alerts).where(m.group_key == group.key)
                     .values(pending=False))
        conn.execute(update(notify_groups).where(notify_groups.c.key == group.key).values(
            last_flush_at=now, flush_at=now + timedelta(seconds=max(repeat, 1))))

    def muted(self, conn: Connection, ctx: Context, labels: Mapping[int, Mapping[str, str]],
              active: list[silence_store.Silence]) -> set[int]:
        """Alerts silenced now, or inhibited by an open alert with the same ``equal`` labels."""
        muted = {i for i, values in labels.items()
                 if any(silence_store.covers(s, values) for s in active)}
        for rule in ctx.policy.inhibitions:
            targets = {i: v for i, v in labels.items()
                       if i not in muted and matches(rule.target, v)}
            if not targets:
                continue
            for source in self._open_sources(conn, ctx, rule.source):
                for alert_id, values in targets.items():
                    if source.id != alert_id and all(
                        source_labels_get(source, ctx, name) == values[name]
                        for name in rule.equal
                    ):
                        muted.add(alert_id)
        return muted

    def _open_sources(self, conn: Connection, ctx: Context, matcher: Matchers) -> list[Any]:
        c = alerts.c
        terms = [c.status != "closed"]
        if matcher.rules:
            terms.append(c.rule_id.in_(matcher.rules))
        if matcher.kinds:
            terms.append(c.kind.in_(matcher.kinds))
        if len(terms) == 1:
            return []  # an inhibition whose source names no rule or kind would mute everything
        ids = [row.id for row in conn.execute(select(c.id).where(and_(*terms)).limit(10_000))]
        rows = _alert_rows(conn, ids)
        return [row for row in rows.values() if matches(matcher, alert_labels(row, ctx))]

    # -- 3. escalation -----------------------------------------------------------------------

    def _start_chain(self, conn: Connection, ctx: Context, alert_id: int, route: Route,
                     escalation: Escalation) -> None:
        e = escalations.c
        if conn.execute(select(e.alert_id).where(e.alert_id == alert_id,
                                                 e.route == route.name)).first():
            return
        wait = self._wait(ctx, escalation, 0)
        conn.execute(insert(escalations).values(
            alert_id=alert_id, route=route.name, chain=route.escalation, receiver=route.receiver,
            step=0, loop=0, state="waiting", next_at=ctx.now + wait, started_at=ctx.now,
            updated_at=ctx.now))

    @staticmethod
    def _wait(ctx: Context, escalation: Escalation, step: int) -> timedelta:
        chosen = escalation.steps[step]
        return timedelta(seconds=chosen.key_period_wait_s if ctx.key_period else chosen.wait_s)

    @staticmethod
    def _set_chain(conn: Connection, alert_id: int, route: str, *, now: datetime,
                   **values: Any) -> None:
        conn.execute(update(escalations).where(escalations.c.alert_id == alert_id,
                                               escalations.c.route == route)
                     .values(updated_at=now, **values))

    def _notify_step(self, conn: Connection, ctx: Context, row: Any, route: str,
                     receiver: str, escalation: Escalation, step: int, loop: int,
                     timed_out: int | None = None) -> None:
        """Notify the position of ``step`` now and wait for an acknowledgement.

        ``timed_out`` is the step whose wait ran out without an acknowledgement: the
        message names its person and the wait (None: the chain starts over).
        """
        chosen = escalation.steps[step]
        staff = on_duty(ctx.policy, self.db, ctx.now)
        escalated = None
        if timed_out is not None:
            previous = escalation.steps[timed_out].notify
            person = staff.person(previous) if staff is not None else None
            escalated = Escalated(
                previous=(ctx.policy.people[person].name if person in ctx.policy.people
                          else position_label(previous)),
                waited_s=int(self._wait(ctx, escalation, timed_out).total_seconds()))
        message = self._message(ctx, chosen.receiver or receiver, "escalation", [row], staff,
                                chosen.notify, None, {}, escalated)
        enqueue(conn, message, ctx.now, [row.id])
        self._set_chain(conn, row.id, route, now=ctx.now, step=step, loop=loop, state="waiting",
                        next_at=ctx.now + self._wait(ctx, escalation, step))
        log.info("alert escalated", alert_id=row.id, step=step, loop=loop,
                 position=chosen.notify, person=staff.person(chosen.notify) if staff else None)

    def escalate(self, ctx: Context) -> datetime | None:
        now = ctx.now
        e = escalations.c
        with self.db.read() as conn:
            due = conn.execute(select(escalations).where(e.next_at <= now)
                               .order_by(e.next_at).limit(1000)).all()
        to_unacknowledge: list[tuple[int, int]] = []
        for chain in due:
            escalation = ctx.policy.escalations.get(chain.chain)
            with self.db.write() as conn:
                row = _alert_rows(conn, [chain.alert_id]).get(chain.alert_id)
                if row is None or escalation is None or row.status == "closed":
                    self._set_chain(conn, chain.alert_id, chain.route, now=now,
                                    state="closed", next_at=None)
                    continue
                if chain.state == "acknowledged":
                    if row.status == "acknowledged":
                        idle = int((now - chain.updated_at).total_seconds() // 60)
                        to_unacknowledge.append((row.id, idle))
                    self._set_chain(conn, row.id, chain.route, now=now, next_at=None)
                    continue
                if row.status != "new":
                    self._set_chain(conn, row.id, chain.route, now=now, next_at=None)
                    continue
                step, loop = self._next_step(ctx, escalation, chain.step, chain.loop)
                if step is None:
                    self._set_chain(conn, row.id, chain.route, now=now, state="exhausted",
                                    next_at=None)
                    continue
                self._notify_step(conn, ctx, row, chain.route, chain.receiver, escalation,
                                  step, loop, timed_out=chain.step)
        for alert_id, minutes in to_unacknowledge:
            try:
                service.unacknowledge(self.db, alert_id, ROUTER_ACTOR,
                                      f"确认后 {minutes} 分钟内未开始处置，重新升级")
            except service.AlertError as exc:
                log.info("alert not unacknowledged", alert_id=alert_id, reason=exc.detail)
        with self.db.read() as conn:
            value: datetime | None = conn.execute(
                select(e.next_at).where(e.next_at.is_not(None)).order_by(e.next_at).limit(1)
            ).scalar()
        return value

    @staticmethod
    def _next_step(ctx: Context, escalation: Escalation, step: int,
                   loop: int) -> tuple[int | None, int]:
        """The next active step after ``step``, wrapping ``repeat`` times; None at the end."""
        for _ in range(len(escalation.steps) * (escalation.repeat + 1)):
            step += 1
            if step >= len(escalation.steps):
                step, loop = 0, loop + 1
                if loop > escalation.repeat:
                    return None, loop
            chosen = escalation.steps[step]
            if ctx.active(chosen.active_in, chosen.active_outside):
                return step, loop
        return None, loop

    # -- messages ----------------------------------------------------------------------------

    def _message(self, ctx: Context, receiver: str, reason: str, rows: list[Any],
                 staff: DutyStaff | None, position: str | None, key: str | None,
                 labels: dict[str, str], escalated: Escalated | None = None) -> Message:
        person = staff.person(position) if staff is not None and position else None
        persons = []
        if person is not None and person in ctx.policy.people:
            p = ctx.policy.people[person]
            persons.append(Contact(id=person, name=p.name, mobile=p.mobile, email=p.email,
                                   dingtalk_user_id=p.dingtalk_user_id,
                                   wecom_user_id=p.wecom_user_id))
        valid = timedelta(seconds=ctx.policy.ack_link_valid_s)
        items = [
            AlertItem(
                id=row.id, fingerprint=row.fingerprint, status=row.status, rule_id=row.rule_id,
                kind=row.kind, severity=Severity.from_rank(row.severity).value, host=row.host,
                account=row.account, title=row.title, count=row.count,
                first_seen=row.first_seen, last_seen=row.last_seen,
                labels={k: v for k, v in alert_labels(row, ctx).items() if v},
                ack_url=(ack_url(self.base_url, self.link_key, row.id, person, ctx.now, valid)
                         if person is not None else None),
                escalated=escalated,
            )
            for row in rows
        ]
        return Message(reason=reason, receiver=receiver, group_key=key, group_labels=labels,
                       position=position, persons=persons, alerts=items,
                       external_url=self.base_url)

    # -- the background task -----------------------------------------------------------------

    async def run(self, feed: Any) -> None:
        """Route until cancelled: at once on feed changes, else when something falls due."""
        self.feed = feed
        async with feed.subscribe() as queue:
            while True:
                current = asyncio.ensure_future(run_in_threadpool(self.tick))
                try:
                    due = await asyncio.shield(current)
                except asyncio.CancelledError:
                    # The store must outlive a running pass: wait for it, then stop.
                    await asyncio.gather(current, return_exceptions=True)
                    raise
                except Exception as exc:
                    log.error("router pass failed; trying again", error=str(exc))
                    due = None
                sleep = MAX_SLEEP_S
                if due is not None:
                    sleep = min(MAX_SLEEP_S, max(0.0, (due - self.clock()).total_seconds()))
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel
                # that lands with a change, and shutdown then waits forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(sleep):
                        await queue.get()
                while not queue.empty():
                    queue.get_nowait()


def source_labels_get(row: Any, ctx: Context, name: str) -> str:
    return alert_labels(row, ctx)[name]
