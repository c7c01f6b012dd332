"""The alert router: alert changes in, grouped and escalated notifications out.

``Router.tick(now)`` is one pass, synchronous and driven by the clock it is
given (tests walk a fake clock through a key period); ``run()`` is the
collector's background task that calls it whenever the alert feed reports a
change (in process: no polling delay) or something falls due.

One pass, by the process holding the ``router`` lease (``collector.store.leases``;
collector processes on one PostgreSQL store take turns, never two at once):

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

Which routes an alert takes is ``collector.routing.matching``, groups are
``collector.routing.grouping``, chains ``collector.routing.escalation``; this
module takes the lease, holds the cursor (``router_state``) and the pass that drives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import structlog
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from agent.events import utcnow
from collector.alerts import service
from collector.metrics import Metrics
from collector.notify.config import ChannelSettings, unconfigured_channels, unreachable_receivers
from collector.notify.outbox import Outbox
from collector.policy.current import CurrentPolicy
from collector.routing import escalation, grouping
from collector.routing.matching import Context, alert_labels, routes_for
from collector.routing.messages import Links, alert_rows
from collector.routing.policy import AlertingPolicy, Route
from collector.store import leases
from collector.store.database import Database
from collector.store.tables import (
    escalations,
    notify_group_alerts,
    router_state,
)
from collector.worker_threads import finish_in_thread

log = structlog.get_logger("collector.alerting")

ROUTER: Final = "router"
LEASE: Final = leases.LEASE
#: Longest sleep between passes: lease renewal, and the backstop for missed wake-ups.
MAX_SLEEP_S: Final = 1.0
#: Shortest time between the starts of two passes (well under any route's group wait).
MIN_GAP_S: Final = 0.25


class LeaseLost(Exception):
    """Another process holds the router lease now; this pass stops."""


@dataclass
class Router:
    db: Database
    policies: CurrentPolicy
    channels: Mapping[str, ChannelSettings]
    link_key: bytes
    base_url: str
    clock: Callable[[], datetime] = utcnow
    owner: str = field(default_factory=leases.new_owner)
    outbox: Outbox | None = None
    #: Set by ``run`` so ingest (or a test) can wake the router at once.
    feed: Any = None
    metrics: Metrics | None = None
    #: How long the router lease outlives its last renewal (every pass renews it).
    lease: timedelta = LEASE

    def __post_init__(self) -> None:
        self._state_exists = False
        #: The alerting policy whose channels were last checked against ``channels``.
        self._channels_checked: object = None
        if self.outbox is None:
            self.outbox = Outbox(self.db, self.channels, self.owner, metrics=self.metrics)

    # -- the lease ---------------------------------------------------------------------------

    def _lease(self, now: datetime) -> bool:
        """Take or renew the router lease; False when another process holds it."""
        c = router_state.c
        if not self._state_exists:
            with self.db.read() as conn:
                self._state_exists = conn.execute(
                    select(c.name).where(c.name == ROUTER)).first() is not None
        if not self._state_exists:
            # A first start routes what happens from now on, not every alert ever stored.
            start = service.latest_change(self.db)
            with contextlib.suppress(IntegrityError), self.db.write() as conn:
                conn.execute(insert(router_state).values(name=ROUTER, cursor=start))
            self._state_exists = True  # the row is never deleted
        return leases.take(self.db, ROUTER, self.owner, now, self.lease)

    def close(self) -> None:
        """Hand the lease over at once (another process need not wait for it to run out)."""
        assert self.outbox is not None  # noqa: S101 (set in __post_init__)
        self.outbox.close()
        with contextlib.suppress(Exception):
            self.release()

    def release(self) -> None:
        leases.release(self.db, ROUTER, self.owner)

    # -- one pass ----------------------------------------------------------------------------

    def context(self, now: datetime) -> Context | None:
        policies = self.policies.get()
        if policies is None:
            return None
        document = policies.section("alerting")
        if not isinstance(document, AlertingPolicy):
            return None
        if document is not self._channels_checked:  # a start, or the policy changed
            self._channels_checked = document
            self.check_channels(document)
        return Context(document, document.calendar.work_calendar(), now,
                       policies.section("accounts"))

    def check_channels(self, document: AlertingPolicy) -> None:
        """Say in one line which channels the receivers use that collector.toml lacks.

        Without this, each notification through such a channel logs its own failed
        attempt, and the cause (a fresh install defines no channel) is never said once.
        """
        missing = unconfigured_channels(document.receivers, self.channels)
        if not missing:
            return
        dead = unreachable_receivers(document.receivers, self.channels)
        (log.error if dead else log.warning)(
            "the alerting policy's receivers use channels collector.toml does not define: "
            "every notification through them fails; add a [notify_channels.<name>] table for "
            "each (docs/alerting.md, \"Channels collector.toml must define\") and restart",
            channels=sorted(missing), receivers=missing, undeliverable_receivers=dead)

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
        assert self.outbox is not None  # noqa: S101 (set in __post_init__)
        sent_next = self.outbox.send_due(now, receivers)
        if sent_next is not None:
            wake.append(sent_next)
        return min(wake) if wake else None

    # -- 1. routing --------------------------------------------------------------------------

    @property
    def links(self) -> Links:
        return Links(self.base_url, self.link_key)

    def route_changes(self, ctx: Context, limit: int = 1000) -> int:
        """Route one batch of feed entries; returns how many were read."""
        with self.db.read() as conn:
            cursor = conn.execute(select(router_state.c.cursor)
                                  .where(router_state.c.name == ROUTER)).scalar_one()
            changes = service.read_changes(conn, cursor, limit)
        if not changes:
            return 0
        with self.db.write() as conn:
            moved = conn.execute(
                update(router_state)
                .where(router_state.c.name == ROUTER, router_state.c.cursor == cursor,
                       leases.held_by(ROUTER, self.owner))
                .values(cursor=changes[-1].id)
            ).rowcount
            if moved != 1:
                raise LeaseLost("another router moved the cursor")
            rows = alert_rows(conn, (change.alert_id for change in changes))
            ids = sorted(rows)
            chains: dict[int, dict[str, Any]] = {}
            for chain in conn.execute(select(escalations).where(escalations.c.alert_id.in_(ids))):
                chains.setdefault(chain.alert_id, {})[chain.route] = chain
            grouped = set(conn.execute(
                select(notify_group_alerts.c.alert_id)
                .where(notify_group_alerts.c.alert_id.in_(ids))).scalars())
            handled: set[int] = set()
            joins: list[tuple[Route, Mapping[str, str], int]] = []
            for change in changes:
                row = rows.get(change.alert_id)
                if row is None or change.alert_id in handled:
                    continue
                handled.add(change.alert_id)
                self._route_alert(conn, ctx, row, chains.get(row.id, {}), row.id in grouped,
                                  joins)
            grouping.join_groups(conn, ctx, joins)
        return len(changes)

    def _route_alert(self, conn: Connection, ctx: Context, row: Any,
                     chains: Mapping[str, Any], grouped: bool,
                     joins: list[tuple[Route, Mapping[str, str], int]]) -> None:
        """Bring the router's state for one alert in line with the alert's current state;
        the groups it joins go into ``joins``, joined together for the whole feed batch."""
        now = ctx.now
        if row.status == "closed":
            conn.execute(update(escalations).where(escalations.c.alert_id == row.id)
                         .values(state="closed", next_at=None, updated_at=now))
            conn.execute(delete(notify_group_alerts)
                         .where(notify_group_alerts.c.alert_id == row.id))
            return
        if not grouped and not chains:
            labels = alert_labels(row, ctx)
            joins += [(route, labels, row.id) for route in routes_for(ctx, labels)]
            return
        escalation.follow_status(conn, ctx, self.db, self.links, row, chains)

    # -- 2. groups and 3. escalation ---------------------------------------------------------

    def flush_groups(self, ctx: Context) -> datetime | None:
        return grouping.flush_groups(self.db, ctx, self.links)

    def escalate(self, ctx: Context) -> datetime | None:
        return escalation.escalate(self.db, ctx, self.links)

    # -- the background task -----------------------------------------------------------------

    async def run(self, feed: Any) -> None:
        """Route until cancelled: at once on feed changes, else when something falls due."""
        self.feed = feed
        async with feed.subscribe() as queue:
            while True:
                started = time.monotonic()
                try:
                    due = await finish_in_thread(self.tick)
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
                # Under ingest the feed reports a change per batch: passes at most every
                # MIN_GAP_S route several batches' alerts together, with the same statements.
                await asyncio.sleep(max(0.0, started + MIN_GAP_S - time.monotonic()))
                while not queue.empty():
                    queue.get_nowait()

