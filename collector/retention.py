"""Retention: old events leave the store in bounded chunks, heartbeats sooner than the rest.

China's Cybersecurity Law (网络安全法, art. 21) asks network operators to keep
network logs for no less than six months, so events are kept 180 days by
default. Heartbeats (``agent.heartbeat``) only prove liveness and arrive every
minute from every agent (1,440 rows per agent per day), so they are kept 7
days. A retention of 0 keeps that class forever.

One pass, in order:

1. compute the cut-off times from ``now`` (a pure function, tested alone);
2. delete heartbeats older than their cut-off, then any event older than its
   cut-off, ``chunk`` rows per transaction, so ingest never waits long for the
   single SQLite writer or for PostgreSQL row locks;
3. stop a class when a chunk comes back short.

Evidence pcaps (``collector/store/evidence.py``) go with the events they
prove, or after ``evidence_retention_days`` when it is set; an upload left
unfinished, or an admin's capture order no agent took up, after 7 days.

Age is the event's own ``time``, which the keyset indexes already cover; an
agent with a wrong clock only shifts when its own events go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import structlog
from sqlalchemy import ColumnElement, and_, delete, select

from agent.events import utcnow
from collector.metrics import Metrics
from collector.periodic import run_periodically
from collector.store.database import Database
from collector.store.evidence import INCOMPLETE_DAYS, prune_evidence
from collector.store.leases import LeaseKeeper
from collector.store.tables import events

log = structlog.get_logger("collector.retention")

HEARTBEAT_KIND: Final = "agent.heartbeat"
#: Rows deleted per transaction.
CHUNK: Final = 5000


@dataclass(frozen=True)
class Cutoffs:
    """Events older than these times go; None keeps that class forever."""

    heartbeats_before: datetime | None
    events_before: datetime | None


@dataclass(frozen=True)
class Pruned:
    heartbeats: int = 0
    events: int = 0


def cutoffs(now: datetime, heartbeat_days: float, event_days: float) -> Cutoffs:
    """The cut-off times for ``now``; a retention of 0 days means keep forever."""

    def before(days: float) -> datetime | None:
        return now - timedelta(days=days) if days > 0 else None

    heartbeats = before(heartbeat_days)
    everything = before(event_days)
    if heartbeats is not None and everything is not None:
        heartbeats = max(heartbeats, everything)  # a heartbeat never outlives other events
    return Cutoffs(heartbeats_before=heartbeats or everything, events_before=everything)


def _delete_in_chunks(
    db: Database, condition: ColumnElement[bool], chunk: int, keep_going: Callable[[], bool]
) -> int:
    total = 0
    while keep_going():
        oldest = select(events.c.pk).where(condition).limit(chunk)
        with db.write() as conn:
            deleted = conn.execute(delete(events).where(events.c.pk.in_(oldest))).rowcount
        total += deleted
        if deleted < chunk:
            break
    return total


def prune(
    db: Database, limits: Cutoffs, chunk: int = CHUNK, keep_going: Callable[[], bool] = lambda: True
) -> Pruned:
    """Delete what ``limits`` says is too old; return how many rows of each class went.

    ``keep_going`` is asked before each chunk, so a shutdown can cut a long pass short.
    """
    heartbeats = 0
    if limits.heartbeats_before is not None:
        heartbeats = _delete_in_chunks(
            db,
            and_(events.c.kind == HEARTBEAT_KIND, events.c.time < limits.heartbeats_before),
            chunk,
            keep_going,
        )
    others = 0
    if limits.events_before is not None:
        others = _delete_in_chunks(db, events.c.time < limits.events_before, chunk, keep_going)
    return Pruned(heartbeats=heartbeats, events=others)


class RetentionTask:
    """Runs ``prune`` periodically; a failed pass is logged and tried again next interval."""

    def __init__(
        self,
        db: Database,
        metrics: Metrics,
        heartbeat_days: float,
        event_days: float,
        interval_s: float,
        evidence_days: float = 0.0,
    ) -> None:
        self.db = db
        #: Days evidence pcaps are kept; 0 keeps them as long as events.
        self.evidence_days = evidence_days
        self.metrics = metrics
        self.heartbeat_days = heartbeat_days
        self.event_days = event_days
        self.interval_s = interval_s
        self._stopping = False

    def run_once(self, now: datetime) -> Pruned:
        limits = cutoffs(now, self.heartbeat_days, self.event_days)
        pruned = prune(self.db, limits, keep_going=lambda: not self._stopping)
        evidence_before = (now - timedelta(days=self.evidence_days) if self.evidence_days > 0
                           else limits.events_before)
        pcaps = prune_evidence(self.db, evidence_before,
                               now - timedelta(days=INCOMPLETE_DAYS))
        if pcaps:
            log.info("old evidence pcaps pruned", artifacts=pcaps)
        self.metrics.pruned.labels("heartbeat").inc(pruned.heartbeats)
        self.metrics.pruned.labels("event").inc(pruned.events)
        if pruned.heartbeats or pruned.events:
            log.info("old events pruned", heartbeats=pruned.heartbeats, events=pruned.events)
        return pruned

    async def run(self, leases: LeaseKeeper | None = None) -> None:
        """Prune a minute after start, then every ``interval_s``, until cancelled."""

        def stop() -> None:
            self._stopping = True

        await run_periodically(
            "retention pass",
            lambda: self.run_once(utcnow()),
            self.interval_s,
            first_after_s=min(60.0, self.interval_s),
            on_cancel=stop,
            leases=leases,
            lease="retention",
        )
