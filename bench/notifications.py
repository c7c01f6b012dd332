"""What the console's notification parts cost on a large delivery log, SQLite and PostgreSQL.

Fills a fresh store with one notification per alert over 30 days (a tenth
failing once before delivery), then times the overview's delivery health
(``collector.console.notifications.health``: the last day's failures through
``ix_deliveries_at``) and one alert's 通知记录 (``for_alert``, through
``notification_alerts``). The floor is one notification read by primary key,
measured in the same run. Never fails on a figure.

    .venv/bin/python bench/notifications.py [--notifications 50000] [--runs 21]
        [--backends sqlite,postgres] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from console import store_urls

from collector.console import notifications as console_notifications
from collector.settings import CollectorSettings
from collector.store import migrate
from collector.store.database import Database
from collector.store.tables import deliveries, notification_alerts, notifications
from tests.postgres import DEFAULT_PG_URL

BATCH = 5000


def load_average() -> str:
    return ", ".join(f"{x:.1f}" for x in psutil.getloadavg())


def timed(call: Callable[[], Any], runs: int) -> tuple[float, float]:
    """Median and 90th percentile in milliseconds, after one warm-up call."""
    call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)]


def fill(db: Database, count: int, now: datetime) -> None:
    for first in range(1, count + 1, BATCH):
        rows, links, attempts = [], [], []
        for i in range(first, min(count, first + BATCH - 1) + 1):
            at = now - timedelta(seconds=i * 30 * 86_400 // count)
            rows.append({"id": i, "receiver": "duty-robot", "channel_index": 0, "reason": "group",
                         "alert_ids": [i], "persons": [], "message": {"position": "on_duty"},
                         "status": "sent", "attempts": 1, "next_attempt_at": at,
                         "created_at": at})
            links.append({"notification_id": i, "alert_id": i})
            failing = i % 10 == 0
            for attempt in ((1, 2) if failing else (1,)):
                ok = not failing or attempt == 2
                attempts.append({"notification_id": i, "channel": "dingtalk",
                                 "attempt": attempt, "at": at, "ok": ok,
                                 "status_code": 200 if ok else 500, "response": "{}",
                                 "error": None if ok else "HTTP 500", "duration_ms": 5.0})
        with db.write() as conn:
            conn.execute(insert(notifications), rows)
            conn.execute(insert(notification_alerts), links)
            conn.execute(insert(deliveries), attempts)


def bench_backend(name: str, url: str, count: int, runs: int) -> None:
    db = Database.from_settings(CollectorSettings(database_url=url, tls=False,
                                                  data_dir=Path(tempfile.mkdtemp())))
    migrate.upgrade(db)
    now = datetime.now(UTC)
    fill(db, count, now)
    print(f"[{name}] {count:,} notifications loaded; load average {load_average()}")

    def floor_read() -> None:
        with db.read() as conn:
            conn.execute(select(notifications).where(notifications.c.id == count // 2)).one()

    floor, _ = timed(floor_read, runs)
    print(f"[{name}] {'floor: one notification by primary key':<40} median {floor:7.2f} ms")
    for label, call in (
        ("overview: delivery health, 24 h", lambda: console_notifications.health(
            db, now, None, {})),
        ("alert page: one alert's 通知记录", lambda: console_notifications.for_alert(
            db, count // 2)),
    ):
        median, p90 = timed(call, runs)
        print(f"[{name}] {label:<40} median {median:7.2f} ms  p90 {p90:7.2f} ms  "
              f"({median / floor:5.1f}x floor)")
    db.dispose()
    print(f"[{name}] load average after: {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notifications", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    print(f"load average before: {load_average()} on {psutil.cpu_count()} CPUs")
    with ExitStack() as stack:
        for backend, url in store_urls(stack, args.backends, args.pg_url):
            bench_backend(backend, url, args.notifications, args.runs)


if __name__ == "__main__":
    main()
