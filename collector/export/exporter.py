"""One output's background loop: read a batch after the cursor, send it, move the cursor.

``Exporter.step()`` is one pass, synchronous (it runs in a worker thread so
ingest and the event loop never wait on a receiver):

1. take the output's lease (``cursor.take_lease``), renewed once a third of
   it has passed so most passes write nothing but their cursor move; another
   process holding it means this one only waits;
2. every ``LAG_CHECK_S``, measure the lag into the metrics and raise
   ``collector.export_lagging`` once when it passes ``lag_alert_s``, and
   ``collector.export_recovered`` once it is back under half of it;
3. read at most ``batch_size`` events after the event cursor, keep the
   filter's, send them, and only then move the cursor past every event read
   (those filtered out too); then the same for alert changes.

A failed send leaves the cursor where it was, is counted and kept as the
row's last error, and ``run`` backs off (full jitter) before the next try,
which sends the same encoded batch again (``Pending``) without re-reading.
``run`` paces sending with a token bucket and, when caught up, looks again
every ``poll_interval_s``. At most one batch is ever in memory: a slow or
dead receiver leaves events waiting in the store, never in the process.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
import structlog

from agent.events import Severity, utcnow
from agent.pacing import Backoff, TokenBucket
from collector.errors import ExportError
from collector.export import cursor
from collector.export.cef import to_cef
from collector.export.config import OutputSettings
from collector.export.ecs import AlertChangeRecord, alert_change_to_ecs, event_to_ecs
from collector.export.metrics import ExportMetrics
from collector.export.transport import Transport, syslog_message, transport_for
from collector.own_events import store_collector_event
from collector.store import leases
from collector.store.database import Database
from collector.worker_threads import finish_in_thread

log = structlog.get_logger("collector.export")

LEASE: Final = leases.LEASE
#: How soon an output held at a gap in event pks looks again (the gap fills at commit).
GAP_RECHECK_S: Final = 0.05
#: How often the lag is measured (and the lag alert judged).
LAG_CHECK_S: Final = 5.0
#: Namespace of the deterministic ids of the lag events: one per output and episode.
LAG_NAMESPACE: Final = uuid.UUID("5d0c3f7e-2b1a-5c4d-9e8f-7a6b5c4d3e2f")


#: The ``record`` label of ``courtguard_export_sent`` for each cursor.
FEED_RECORDS: Final = {"event": "event", "alert": "alert_change"}


@dataclass(frozen=True)
class Pending:
    """One encoded batch and where it moves its cursor, kept while the receiver refuses it.

    A retry sends the same bytes without reading the store again.
    """

    after: int
    new: int
    records: list[bytes]
    more: bool = False
    held: bool = False


@dataclass
class StepResult:
    sent: int = 0
    #: A full batch was read: there is probably more waiting.
    more: bool = False
    #: Another process holds the output.
    idle: bool = False
    #: Stopped at a gap in event pks that a transaction may still fill: look again soon.
    held: bool = False


def encode(output: OutputSettings, document: dict[str, Any]) -> bytes:
    """One record as the output sends it: an RFC 5424 message, or an NDJSON line."""
    if output.type == "https-ndjson":
        return orjson.dumps(document) + b"\n"
    body = to_cef(document) if output.format == "cef" else orjson.dumps(document).decode()
    return syslog_message(
        output, time=datetime.fromisoformat(document["@timestamp"]),
        host=document["host"]["name"], msgid=document["event"]["action"],
        severity=document["log"]["level"], body=body)


@dataclass
class Exporter:
    db: Database
    output: OutputSettings
    metrics: ExportMetrics
    #: Longest a gap in event pks holds the output (PostgreSQL only; see cursor.contiguous).
    gap_wait_s: float = 60.0
    clock: Callable[[], datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic
    owner: str = field(default_factory=leases.new_owner)
    transport: Transport | None = None
    _gaps: dict[int, cursor.Gap] = field(default_factory=dict)
    _lag_checked: float | None = None
    _ready: bool = False
    #: How long the output's lease outlives its last renewal.
    lease: timedelta = LEASE
    _lease_until: datetime | None = None
    _pending: dict[str, Pending] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics.add_output(self.output.name)

    @property
    def name(self) -> str:
        return self.output.name

    # -- one pass ----------------------------------------------------------------------------

    def step(self) -> StepResult:
        now = self.clock()
        if not self._ready:
            cursor.ensure_cursor(self.db, self.name, self.output.start, now)
            self._ready = True
        row = self._holding(now)
        if row is None:
            return StepResult(idle=True)
        mono = self.monotonic()
        if self._lag_checked is None or mono - self._lag_checked >= LAG_CHECK_S:
            self._lag_checked = mono
            self.check_lag(row, now)
        result = self._send_events(row.event_cursor, now)
        if self.output.alert_changes:
            more_alerts = self._send_alert_changes(row.alert_cursor, now)
            result.sent += more_alerts.sent
            result.more = result.more or more_alerts.more
        return result

    def _holding(self, now: datetime) -> Any | None:
        """The cursor row while this process holds the output, None while another does."""
        if self._lease_until is not None and now < self._lease_until - self.lease * 2 / 3:
            row = cursor.cursor_row(self.db, self.name)
            if row is not None:
                return row
        row = cursor.take_lease(self.db, self.name, self.owner, now, self.lease)
        self._lease_until = now + self.lease if row is not None else None
        return row

    def _deliver(self, records: list[bytes], now: datetime) -> None:
        try:
            if self.transport is None:
                self.transport = transport_for(self.output)
            self.transport.send(records)
        except ExportError as exc:
            self.metrics.failed.labels(self.name).inc()
            cursor.record_failure(self.db, self.name, self.owner, str(exc), now)
            raise
        self.metrics.last_success.labels(self.name).set(time.time())

    def _send_events(self, after: int, now: datetime) -> StepResult:
        size = self.output.batch_size
        pending = self._pending.get("event")
        if pending is not None and pending.after == after:
            return self._resend(pending, "event", now)
        running_before = cursor.running_transactions(self.db)
        rows = cursor.read_events(self.db, after, size)
        running_after = cursor.running_transactions(self.db) if rows else frozenset()
        usable, forced = cursor.contiguous(
            rows, after, self._gaps, running_before=running_before, running_after=running_after,
            now_s=self.monotonic(), ceiling_s=self.gap_wait_s)
        if forced:
            log.warning("export passed event ids a long-running transaction may still hold",
                        output=self.name, first_missing=forced, held_s=self.gap_wait_s)
        if not usable:
            return StepResult(held=bool(rows))
        records = [encode(self.output, event_to_ecs(row)) for row in usable
                   if self.output.takes(row.kind, row.severity)]
        batch = Pending(after, usable[-1].pk, records, more=len(rows) == size,
                        held=len(usable) < len(rows))
        return self._resend(batch, "event", now)

    def _resend(self, batch: Pending, feed: str, now: datetime) -> StepResult:
        """Deliver ``batch`` and move the cursor; kept for the next try if it fails."""
        self._pending[feed] = batch
        if batch.records:
            self._deliver(batch.records, now)
        del self._pending[feed]
        if not cursor.advance(self.db, self.name, self.owner, feed=feed, old=batch.after,
                              new=batch.new, sent=len(batch.records), now=now):
            log.warning("export lease lost; another process sends now", output=self.name)
            return StepResult()
        self.metrics.sent.labels(self.name, FEED_RECORDS[feed]).inc(len(batch.records))
        return StepResult(len(batch.records), more=batch.more, held=batch.held)

    def _send_alert_changes(self, after: int, now: datetime) -> StepResult:
        pending = self._pending.get("alert")
        if pending is not None and pending.after == after:
            return self._resend(pending, "alert", now)
        size = self.output.batch_size
        changes = cursor.read_alert_changes(self.db, after, size)
        if not changes:
            return StepResult()
        taken: list[AlertChangeRecord] = [
            change for change in changes if self.output.takes(change.kind, change.severity)]
        records = [encode(self.output, alert_change_to_ecs(change)) for change in taken]
        return self._resend(Pending(after, changes[-1].change_id, records,
                                    more=len(changes) == size), "alert", now)

    # -- lag ---------------------------------------------------------------------------------

    def check_lag(self, row: Any, now: datetime) -> None:
        """Lag into the metrics; the lag event once past the threshold, recovery once back."""
        lag = cursor.measure_lag(self.db, row.event_cursor, now)
        self.metrics.lag_events.labels(self.name).set(lag.events)
        self.metrics.lag_seconds.labels(self.name).set(lag.seconds)
        threshold = self.output.lag_alert_s
        if row.lagging_since is None and lag.seconds > threshold:
            if cursor.set_lagging(self.db, self.name, self.owner, now):
                self._lag_event("collector.export_lagging", Severity.HIGH, lag, now, now,
                                row.last_error,
                                f"SIEM 输出 {self.name} 积压：最早未发出的事件已等待 "
                                f"{lag.seconds / 60:.0f} 分钟，共 {lag.events} 条")
        elif (row.lagging_since is not None and lag.seconds <= threshold / 2
              and cursor.set_lagging(self.db, self.name, self.owner, None)):
            self._lag_event("collector.export_recovered", Severity.INFO, lag,
                            row.lagging_since, now, None,
                            f"SIEM 输出 {self.name} 已恢复，积压已消除")

    def _lag_event(self, kind: str, severity: Severity, lag: cursor.Lag, since: datetime,
                   now: datetime, last_error: str | None, summary: str) -> None:
        key = f"{self.name}/{kind}/{since.isoformat()}"
        evidence = {"output": self.name, "lag_s": round(lag.seconds, 3),
                    "lag_events": lag.events, "threshold_s": self.output.lag_alert_s,
                    "since": since.isoformat(), "last_error": last_error}
        store_collector_event(self.db, event_id=uuid.uuid5(LAG_NAMESPACE, key), kind=kind,
                              severity=severity, summary=summary, evidence=evidence,
                              policy_version=None, now=now)
        log.warning("export output lag", output=self.name, kind=kind,
                    lag_s=round(lag.seconds, 1), lag_events=lag.events)

    # -- the background task -----------------------------------------------------------------

    def close(self) -> None:
        """Close the connection and hand the output over at once."""
        if self.transport is not None:
            self.transport.close()
        self._lease_until = None
        try:
            cursor.release_lease(self.db, self.name, self.owner)
        except Exception as exc:  # the store may be gone at shutdown; the lease then runs out
            log.warning("export lease not released", output=self.name, error=str(exc))

    async def run(self) -> None:
        """Send until cancelled: paced, backing off after failures, polling when caught up."""
        bucket = TokenBucket(self.output.rate_per_s, self.output.burst, self.monotonic())
        backoff = Backoff(self.output.retry_initial_s, self.output.retry_max_s, random.random)
        while True:
            try:
                result = await finish_in_thread(self.step)
            except ExportError as exc:
                delay = backoff.next_delay()
                log.warning("export batch not delivered; sending again later",
                            output=self.name, error=str(exc), retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            except Exception as exc:
                delay = backoff.next_delay()
                log.error("export pass failed; trying again", output=self.name,
                          error=str(exc), retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if result.idle:
                await asyncio.sleep(self.lease.total_seconds() / 3)
                continue
            pause = bucket.spend(self.monotonic(), result.sent) if result.sent else 0.0
            if result.held:
                pause = max(pause, min(GAP_RECHECK_S, self.output.poll_interval_s))
            elif not result.more:
                pause = max(pause, self.output.poll_interval_s)
            await asyncio.sleep(pause)
