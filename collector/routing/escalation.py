"""Escalation chains: who is told next when nobody acknowledges an alert in time.

A chain starts when its route's group first reports the alert. Each step
notifies a position (on duty, backup, duty leader...) and waits its step's
time, shorter in a key period; a wait that runs out notifies the next active
step, wrapping ``repeat`` times, then the chain is exhausted. An acknowledged
alert left alone too long is unacknowledged through the alert service, which
starts its chain over; starting work on it stops the chain, closing it ends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

import structlog
from sqlalchemy import Connection, insert, select, update

from collector.alerts import service
from collector.notify.message import Escalated, position_label
from collector.notify.outbox import enqueue
from collector.routing.duty import on_duty
from collector.routing.matching import Context
from collector.routing.messages import Links, alert_rows, compose
from collector.routing.policy import Escalation, Route
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.tables import escalations

# The router's log name, which operators' log filters know, for everything it does.
log = structlog.get_logger("collector.alerting")

ROUTER_ACTOR: Final = Actor("router", via="router")
BATCH: Final = 1000


def step_wait(ctx: Context, escalation: Escalation, step: int) -> timedelta:
    """How long ``step`` waits for an acknowledgement now."""
    chosen = escalation.steps[step]
    return timedelta(seconds=chosen.key_period_wait_s if ctx.key_period else chosen.wait_s)


def next_step(ctx: Context, escalation: Escalation, step: int,
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


def start_chain(conn: Connection, ctx: Context, alert_id: int, route: Route,
                escalation: Escalation) -> None:
    """Start the route's chain for the alert, waiting on its first step (once per route)."""
    e = escalations.c
    if conn.execute(select(e.alert_id).where(e.alert_id == alert_id,
                                             e.route == route.name)).first():
        return
    wait = step_wait(ctx, escalation, 0)
    conn.execute(insert(escalations).values(
        alert_id=alert_id, route=route.name, chain=route.escalation, receiver=route.receiver,
        step=0, loop=0, state="waiting", next_at=ctx.now + wait, started_at=ctx.now,
        updated_at=ctx.now))


def _set_chain(conn: Connection, alert_id: int, route: str, *, now: datetime,
               **values: Any) -> None:
    conn.execute(update(escalations).where(escalations.c.alert_id == alert_id,
                                           escalations.c.route == route)
                 .values(updated_at=now, **values))


def follow_status(conn: Connection, ctx: Context, db: Database, links: Links, row: Any,
                  chains: Mapping[str, Any]) -> None:
    """Bring the alert's chains in line with its status (closed alerts are handled before)."""
    now = ctx.now
    for chain in chains.values():
        escalation = ctx.policy.escalations.get(chain.chain)
        if escalation is None:
            continue
        if row.status == "new" and chain.state in ("acknowledged", "closed", "stopped"):
            # Unacknowledged again, or re-opened: the chain starts over, now.
            notify_step(conn, ctx, db, links, row, chain.route, chain.receiver, escalation, 0, 0)
        elif row.status == "acknowledged" and chain.state in ("waiting", "exhausted",
                                                                "closed"):
            if chain.state == "closed":
                # Re-opened (closed -> acknowledged): the duty hears of it again at once.
                notify_step(conn, ctx, db, links, row, chain.route, chain.receiver, escalation,
                            0, 0)
            wait = (escalation.key_period_unacknowledged_after_s if ctx.key_period
                    else escalation.unacknowledged_after_s)
            _set_chain(conn, row.id, chain.route, state="acknowledged",
                       next_at=now + timedelta(seconds=wait), now=now)
        elif row.status == "in_progress" and chain.state != "stopped":
            _set_chain(conn, row.id, chain.route, state="stopped", next_at=None, now=now)


def notify_step(conn: Connection, ctx: Context, db: Database, links: Links, row: Any,
                route: str, receiver: str, escalation: Escalation, step: int, loop: int,
                timed_out: int | None = None) -> None:
    """Notify the position of ``step`` now and wait for an acknowledgement.

    ``timed_out`` is the step whose wait ran out without an acknowledgement: the
    message names its person and the wait (None: the chain starts over).
    """
    chosen = escalation.steps[step]
    staff = on_duty(ctx.policy, db, ctx.now)
    escalated = None
    if timed_out is not None:
        previous = escalation.steps[timed_out].notify
        person = staff.person(previous) if staff is not None else None
        escalated = Escalated(
            previous=(ctx.policy.people[person].name if person in ctx.policy.people
                      else position_label(previous)),
            waited_s=int(step_wait(ctx, escalation, timed_out).total_seconds()))
    message = compose(ctx, links, chosen.receiver or receiver, "escalation", [row], staff,
                      chosen.notify, None, {}, escalated)
    enqueue(conn, message, ctx.now, [row.id])
    _set_chain(conn, row.id, route, now=ctx.now, step=step, loop=loop, state="waiting",
               next_at=ctx.now + step_wait(ctx, escalation, step))
    log.info("alert escalated", alert_id=row.id, step=step, loop=loop,
             position=chosen.notify, person=staff.person(chosen.notify) if staff else None)


def escalate(db: Database, ctx: Context, links: Links) -> datetime | None:
    """Advance every chain whose wait ran out; returns when the next wait runs out."""
    now = ctx.now
    e = escalations.c
    following = select(e.next_at).where(e.next_at.is_not(None)).order_by(e.next_at).limit(1)
    with db.read() as conn:
        due = conn.execute(select(escalations).where(e.next_at <= now)
                           .order_by(e.next_at).limit(BATCH)).all()
        if not due:  # the usual pass: nothing ran out, one read answers both questions
            upcoming: datetime | None = conn.execute(following).scalar()
            return upcoming
    to_unacknowledge: list[tuple[int, int]] = []
    for chain in due:
        escalation = ctx.policy.escalations.get(chain.chain)
        with db.write() as conn:
            row = alert_rows(conn, [chain.alert_id]).get(chain.alert_id)
            if row is None or escalation is None or row.status == "closed":
                _set_chain(conn, chain.alert_id, chain.route, now=now,
                           state="closed", next_at=None)
                continue
            if chain.state == "acknowledged":
                if row.status == "acknowledged":
                    idle = int((now - chain.updated_at).total_seconds() // 60)
                    to_unacknowledge.append((row.id, idle))
                _set_chain(conn, row.id, chain.route, now=now, next_at=None)
                continue
            if row.status != "new":
                _set_chain(conn, row.id, chain.route, now=now, next_at=None)
                continue
            step, loop = next_step(ctx, escalation, chain.step, chain.loop)
            if step is None:
                _set_chain(conn, row.id, chain.route, now=now, state="exhausted",
                           next_at=None)
                continue
            notify_step(conn, ctx, db, links, row, chain.route, chain.receiver, escalation,
                        step, loop, timed_out=chain.step)
    for alert_id, minutes in to_unacknowledge:
        try:
            service.unacknowledge(db, alert_id, ROUTER_ACTOR,
                                  f"确认后 {minutes} 分钟内未开始处置，重新升级")
        except service.AlertError as exc:
            log.info("alert not unacknowledged", alert_id=alert_id, reason=exc.detail)
    with db.read() as conn:
        value: datetime | None = conn.execute(following).scalar()
    return value
