"""What the console shows of notification delivery: an alert's 通知记录, and delivery health.

1. ``for_alert``: every notification that carried one alert (its own group
   notification, repeats, escalation steps, digests that folded it in), found
   through ``notification_alerts``, each with its delivery attempts in order
   and the outcome of each in one word;
2. ``health``: for the overview, the failed attempts and undeliverable
   notifications of the last day (through ``ix_deliveries_at``), and the
   channels the alerting policy's receivers use that collector.toml lacks.

Codes (reason, position, status, outcome) stay codes here; the templates
translate them (``collector/console/i18n.py``). Receivers' answers and errors
are stored English library text: they are shown as detail, escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, select

from collector.notify.config import ChannelSettings, unconfigured_channels
from collector.routing.policy import AlertingPolicy
from collector.store.database import Database
from collector.store.tables import deliveries, notification_alerts, notifications

#: An alert page lists at most this many notifications (newest kept); a chain repeats twice.
MAX_NOTIFICATIONS: Final = 200
#: The overview warns about failures within this window.
HEALTH_WINDOW: Final = timedelta(hours=24)
#: ``deliveries.channel`` of the row written when no channel was left to try.
GAVE_UP: Final = "-"


def attempt_outcome(ok: bool, channel: str, last: bool, status: str) -> str:
    """One attempt in one word: delivered, failed, retrying (more follows) or undeliverable."""
    if ok:
        return "delivered"
    if channel == GAVE_UP:
        return "undeliverable"
    if last and status in ("pending", "sending"):
        return "retrying"
    return "failed"


def for_alert(db: Database, alert_id: int) -> list[dict[str, Any]]:
    """The notifications that carried ``alert_id``, oldest first, each with its attempts."""
    n, d = notifications.c, deliveries.c
    ids = (select(notification_alerts.c.notification_id)
           .where(notification_alerts.c.alert_id == alert_id)
           .order_by(notification_alerts.c.notification_id.desc()).limit(MAX_NOTIFICATIONS))
    with db.read() as conn:
        rows = conn.execute(
            select(n.id, n.receiver, n.reason, n.status, n.message, n.created_at, n.sent_at,
                   n.sent_channel, n.digest_id, n.alert_ids)
            .where(n.id.in_(ids)).order_by(n.id)).all()
        attempts = conn.execute(
            select(d.notification_id, d.channel, d.attempt, d.at, d.ok, d.response, d.error)
            .where(d.notification_id.in_([r.id for r in rows])).order_by(d.id)).all()
    by_id: dict[int, list[Any]] = {}
    for a in attempts:
        by_id.setdefault(a.notification_id, []).append(a)
    result = []
    for r in rows:
        message = r.message or {}
        tried = by_id.get(r.id, [])
        result.append({
            "id": r.id, "receiver": r.receiver, "reason": r.reason, "status": r.status,
            "position": message.get("position"),
            "persons": [p.get("name") or p.get("id") for p in message.get("persons") or []],
            "extra_to": list(message.get("extra_to") or []),
            "alerts": len(r.alert_ids or []), "created_at": r.created_at, "sent_at": r.sent_at,
            "sent_channel": r.sent_channel, "digest_id": r.digest_id,
            "attempts": [{
                "at": a.at, "channel": a.channel, "attempt": a.attempt,
                "outcome": attempt_outcome(a.ok, a.channel, i == len(tried) - 1, r.status),
                # What went wrong, and on a failure what the receiver answered (its own text).
                "error": a.error, "response": None if a.ok else a.response,
            } for i, a in enumerate(tried)],
        })
    return result


def health(db: Database, now: datetime, policy: AlertingPolicy | None,
           channels: Mapping[str, ChannelSettings]) -> dict[str, Any]:
    """The last day's failed attempts and undeliverable notifications, the newest failure,
    and the channels the receivers use that collector.toml lacks."""
    d = deliveries.c
    since = now - HEALTH_WINDOW
    gave_up = (d.channel == GAVE_UP).label("gave_up")
    with db.read() as conn:
        counts: dict[Any, int] = {gave: n for gave, n in conn.execute(
            select(gave_up, func.count()).where(d.at >= since, d.ok.is_(False))
            .group_by(gave_up))}
        newest = conn.execute(
            select(d.at, d.channel, d.error, d.notification_id)
            .where(d.at >= since, d.ok.is_(False)).order_by(d.at.desc()).limit(1)).first()
        # The page that shows the newest failure: an alert the notification carried.
        alert_id = None if newest is None else conn.execute(
            select(func.min(notification_alerts.c.alert_id))
            .where(notification_alerts.c.notification_id == newest.notification_id)).scalar()
    missing = (unconfigured_channels(policy.receivers, channels) if policy is not None else {})
    failed, undeliverable = counts.get(False, 0), counts.get(True, 0)
    return {
        "failed": failed, "undeliverable": undeliverable,
        "newest_failure": ({"at": newest.at, "channel": newest.channel, "error": newest.error,
                            "alert_id": alert_id} if newest is not None else None),
        "unconfigured": sorted(missing),
        "warn": bool(failed or undeliverable or missing),
    }
