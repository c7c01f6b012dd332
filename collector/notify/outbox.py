"""The outbox: queued notifications sent with rate limits, retries, fallback and a delivery log.

Rows of ``notifications`` are written by the router in the transaction that
decides them, so a collector that stops (or dies) sends what is pending when
it comes back. ``send_due(now)``:

- claims a due row by a conditional UPDATE (``pending``, or ``sending`` whose
  lease ran out), so two collector processes never send the same row;
- takes a token from the channel's bucket (robots accept about 20 messages a
  minute); when more rows for one receiver and channel are due than there are
  tokens, folds them into one digest (the originals become ``digested``,
  pointing at it) instead of letting the queue grow or dropping any;
- sends once, records the attempt in ``deliveries`` with the answer, then
  marks the row ``sent``, or schedules a retry with exponential backoff, or
  after ``max_attempts`` moves it to the receiver's next channel (fallback),
  or ``failed`` when none is left.

A process that dies between a receiver's answer and the record of it sends
the message again after the lease (at least once, never lost).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import structlog
from sqlalchemy import Connection, and_, func, insert, or_, select, update

from agent.events import utcnow
from agent.pacing import TokenBucket, backoff_ceiling
from collector.metrics import Metrics
from collector.notify import channels
from collector.notify.channels import Outcome
from collector.notify.config import ChannelSettings
from collector.notify.message import Message
from collector.notify.transport import CAFileError, HttpClients
from collector.routing.policy import Receiver
from collector.store.database import Database
from collector.store.tables import alerts, deliveries, events, notification_alerts, notifications

log = structlog.get_logger("collector.notify")

#: A claimed row's lease: longer than any channel's timeout.
LEASE: Final = timedelta(seconds=180)
BATCH: Final = 1000


class _Contended(Exception):
    """Another process claimed a row first."""


_ROW: Final = select(
    notifications.c.id, notifications.c.receiver, notifications.c.channel_index,
    notifications.c.attempts, notifications.c.message, notifications.c.alert_ids,
    notifications.c.persons, notifications.c.status,
)


def enqueue(conn: Connection, message: Message, now: datetime, alert_ids: list[int],
            channel_index: int = 0) -> int:
    """Queue ``message`` for its receiver inside the caller's transaction; returns the row id."""
    row = conn.execute(
        insert(notifications)
        .values(
            receiver=message.receiver, channel_index=channel_index, reason=message.reason,
            group_key=message.group_key, alert_ids=alert_ids,
            persons=[p.id for p in message.persons],
            message=message.model_dump(mode="json"), status="pending", attempts=0,
            next_attempt_at=now, created_at=now,
        )
        .returning(notifications.c.id)
    ).one()
    if alert_ids:
        conn.execute(insert(notification_alerts), [
            {"notification_id": row.id, "alert_id": alert_id}
            for alert_id in sorted(set(alert_ids))])
    return int(row.id)


@dataclass
class Outbox:
    db: Database
    channels: Mapping[str, ChannelSettings]
    owner: str
    #: HTTP clients by the CA file a channel trusts (``ca_file``).
    clients: HttpClients = field(default_factory=HttpClients)
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    #: Called after each attempt (tests): (notification id, channel, outcome).
    on_attempt: Callable[[int, str, Outcome], None] | None = None
    #: Sent, failed, retried per channel, digest sizes and ingest-to-send times.
    metrics: Metrics | None = None

    def bucket(self, name: str) -> TokenBucket:
        if name not in self.buckets:
            settings = self.channels[name]
            self.buckets[name] = TokenBucket(settings.rate_per_minute / 60, settings.burst)
        return self.buckets[name]

    def send_due(self, now: datetime, receivers: Mapping[str, Receiver]) -> datetime | None:
        """Send what is due; return when something next falls due (None: nothing queued)."""
        due, upcoming = self._due(now)
        if not due:  # the usual pass: nothing to send, and when the next falls due
            return upcoming
        queues: dict[tuple[str, int], list[Any]] = {}
        for row in due:
            queues.setdefault((row.receiver, row.channel_index), []).append(row)
        wake: list[datetime] = []
        for (receiver_name, index), rows in queues.items():
            receiver = receivers.get(receiver_name)
            if receiver is None or index >= len(receiver.channels):
                why = (f"receiver {receiver_name!r} is not in the alerting policy"
                       if receiver is None else
                       f"all {len(receiver.channels)} channels of receiver {receiver_name!r} "
                       "failed; each attempt is in the delivery log")
                for row in rows:
                    self._give_up(row, now, why)
                continue
            use = receiver.channels[index]
            if use.channel not in self.channels:
                for row in rows:
                    self._record_and_advance(
                        row, use.channel, now, Outcome(False, error=(
                            f"channel {use.channel!r} is not configured (notify_channels)")),
                        max_attempts=1, retry=(0, 0))
                continue
            bucket = self.bucket(use.channel)
            at = now.timestamp()
            if len(rows) > 1 and len(rows) > bucket.available(at):
                rows = [self._digest(rows, now)]
            for row in rows:
                if not bucket.try_take(at):
                    wake.append(now + timedelta(seconds=bucket.seconds_until(at)))
                    break
                self._attempt(row, use.channel, use.to, now)
        if len(due) == BATCH:
            wake.append(now)  # more are due than one pass takes
        upcoming = self._next_due(now)
        if upcoming is not None:
            wake.append(upcoming)
        return min(wake) if wake else None

    def _due(self, now: datetime) -> tuple[list[Any], datetime | None]:
        """What is due now; when nothing is, also when the next falls due (one read)."""
        c = notifications.c
        with self.db.read() as conn:
            due = list(conn.execute(
                _ROW.where(or_(
                    and_(c.status == "pending", c.next_attempt_at <= now),
                    and_(c.status == "sending", c.lease_until < now),
                ))
                .order_by(c.id)
                .limit(BATCH)
            ).all())
            return due, (None if due else self._read_next_due(conn, now))

    def _next_due(self, now: datetime) -> datetime | None:
        with self.db.read() as conn:
            return self._read_next_due(conn, now)

    @staticmethod
    def _read_next_due(conn: Connection, now: datetime) -> datetime | None:
        c = notifications.c
        value: datetime | None = conn.execute(
            # Rows already due wait for a token (in ``wake``): counting them would spin.
            select(c.next_attempt_at).where(c.status == "pending", c.next_attempt_at > now)
            .order_by(c.next_attempt_at).limit(1)
        ).scalar()
        return value

    def _claim(self, conn: Connection, ids: list[int], now: datetime) -> int:
        c = notifications.c
        return conn.execute(
            update(notifications)
            .where(c.id.in_(ids), or_(c.status == "pending",
                                      and_(c.status == "sending", c.lease_until < now)))
            .values(status="sending", lease_until=now + LEASE)
        ).rowcount

    def _digest(self, rows: list[Any], now: datetime) -> Any:
        """Fold ``rows`` into one new pending digest row; the originals point at it."""
        messages = [Message.model_validate(row.message) for row in rows]
        alerts: dict[int, Any] = {}
        persons: dict[str, Any] = {}
        replaces = 0
        for message in messages:
            for alert in message.alerts:
                # An escalation's wording (who did not acknowledge) outranks a plain mention.
                if alert.id not in alerts or alert.escalated is not None:
                    alerts[alert.id] = alert
            for person in message.persons:
                persons.setdefault(person.id, person)
            replaces += message.replaces or 1
        first = messages[0]
        digest = Message(
            reason="digest", receiver=first.receiver, persons=list(persons.values()),
            extra_to=sorted({t for m in messages for t in m.extra_to}),
            alerts=list(alerts.values()), replaces=replaces, external_url=first.external_url,
        )
        ids = [row.id for row in rows]
        try:
            with self.db.write() as conn:
                if self._claim(conn, ids, now) != len(ids):
                    raise _Contended
                digest_id = enqueue(conn, digest, now, sorted(alerts), rows[0].channel_index)
                conn.execute(update(notifications).where(notifications.c.id.in_(ids))
                             .values(status="digested", digest_id=digest_id, lease_until=None))
                row = conn.execute(_ROW.where(notifications.c.id == digest_id)).one()
        except _Contended:
            return rows[0]  # another process took some of them: send one as it is
        log.info("notifications folded into a digest", digest_id=digest_id, replaced=len(ids))
        if self.metrics is not None:
            self.metrics.digest_size.observe(len(ids))
        return row

    def _attempt(self, row: Any, channel: str, extra_to: list[str], now: datetime) -> None:
        with self.db.write() as conn:
            if self._claim(conn, [row.id], now) != 1:
                return
        settings = self.channels[channel]
        message = Message.model_validate(row.message)
        started = time.perf_counter()
        try:
            outcome = channels.send(message, settings, self.clients.for_channel(settings),
                                    [*message.extra_to, *extra_to])
        except CAFileError as exc:
            outcome = Outcome(False, error=channels.excerpt(str(exc)))
        except Exception as exc:  # a rendering bug must not wedge the queue
            log.exception("channel raised", channel=channel, notification_id=row.id)
            outcome = Outcome(False, error=channels.excerpt(f"{type(exc).__name__}: {exc}"))
        duration_ms = (time.perf_counter() - started) * 1000
        self._record_and_advance(row, channel, now, outcome, settings.max_attempts,
                                 (settings.retry_base_s, settings.retry_max_s), duration_ms)

    def _record_and_advance(self, row: Any, channel: str, now: datetime, outcome: Outcome,
                            max_attempts: int, retry: tuple[float, float],
                            duration_ms: float = 0.0) -> None:
        attempt = row.attempts + 1
        c = notifications.c
        with self.db.write() as conn:
            conn.execute(insert(deliveries).values(
                notification_id=row.id, channel=channel, attempt=attempt, at=now, ok=outcome.ok,
                status_code=outcome.status_code, response=outcome.response,
                error=outcome.error, duration_ms=duration_ms,
            ))
            if outcome.ok:
                values: dict[str, Any] = {"status": "sent", "sent_at": now,
                                          "sent_channel": channel, "attempts": attempt}
                next_step = "sent"
            elif attempt < max_attempts:
                delay = backoff_ceiling(*retry, attempt - 1)
                values = {"status": "pending", "attempts": attempt,
                          "next_attempt_at": now + timedelta(seconds=delay)}
                next_step = "retry"
            else:
                values = {"status": "pending", "attempts": 0,
                          "channel_index": row.channel_index + 1, "next_attempt_at": now}
                next_step = "fallback"
            values["lease_until"] = None
            conn.execute(update(notifications).where(c.id == row.id).values(**values))
            newest_event = (self._newest_event_received(conn, row.alert_ids)
                            if outcome.ok and self.metrics is not None else None)
        if self.metrics is not None:
            self._count(channel, next_step, row, newest_event)
        if self.on_attempt is not None:
            self.on_attempt(row.id, channel, outcome)
        if not outcome.ok:
            log.warning("notification delivery failed", notification_id=row.id, channel=channel,
                        attempt=attempt, status_code=outcome.status_code, error=outcome.error)

    @staticmethod
    def _newest_event_received(conn: Connection, alert_ids: list[int] | None) -> Any:
        """When the collector received the newest event of these alerts (None: none stored)."""
        if not alert_ids:
            return None
        newest = select(alerts.c.last_event_id).where(alerts.c.id.in_(alert_ids))
        return conn.execute(
            select(func.max(events.c.received_at)).where(events.c.id.in_(newest))
        ).scalar()

    def _count(self, channel: str, next_step: str, row: Any, newest_event: Any) -> None:
        assert self.metrics is not None  # noqa: S101 (the caller checked)
        if next_step == "sent":
            self.metrics.notifications_sent.labels(channel).inc()
            if newest_event is not None:
                reason = str((row.message or {}).get("reason") or "group")
                # The wall clock, not the pass's ``now``: the receiver answered after it.
                self.metrics.ingest_to_send.labels(reason).observe(
                    max(0.0, (utcnow() - newest_event).total_seconds()))
            return
        self.metrics.notification_failures.labels(channel).inc()
        if next_step == "retry":
            self.metrics.notification_retries.labels(channel).inc()
        else:
            self.metrics.notification_fallbacks.labels(channel).inc()

    def _give_up(self, row: Any, now: datetime, why: str) -> None:
        with self.db.write() as conn:
            conn.execute(insert(deliveries).values(
                notification_id=row.id, channel="-", attempt=row.attempts + 1, at=now, ok=False,
                status_code=None, response=None, error=why[:500], duration_ms=0.0,
            ))
            conn.execute(update(notifications).where(notifications.c.id == row.id)
                         .values(status="failed", lease_until=None))
        if self.metrics is not None:
            self.metrics.notifications_undeliverable.inc()
        log.error("notification undeliverable: every channel failed", notification_id=row.id,
                  reason=why)

    def close(self) -> None:
        self.clients.close()
