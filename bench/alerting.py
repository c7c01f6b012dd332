"""Alert router figures: routing throughput, and event-to-notification latency at the collector.

1. Throughput (in process, SQLite and PostgreSQL): ``--alerts`` alerts are
   opened through the alert service's own grouping (one per contractor
   account, so each lands in its own notification group), then timed: the
   router reading the change feed, routing and grouping them (alerts/s), and
   flushing the groups into queued notifications (alerts/s). Sending is not
   part of it (the outbox's receivers are the latency part's).
2. Latency (a real collector process over HTTPS): an enrolled agent posts one
   event at a time; the route has a zero group wait; the time from the POST
   leaving the agent to the signed DingTalk request arriving at a loopback
   robot. Median and p90 over ``--samples``.

Prints figures and the load average; it never fails on a figure.

    .venv/bin/python bench/alerting.py [--alerts 5000] [--samples 40] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.events import Event, Severity
from collector.alerts.grouping import group_events
from collector.policy.current import CurrentPolicy
from collector.routing.router import Router
from collector.settings import CollectorSettings
from collector.store import migrate
from collector.store.database import Database
from tests.e2e.harness import (
    POLICIES,
    Agent,
    Collector,
    agent_headers,
    batch_body,
    synthetic_events,
    wait_until,
)
from tests.e2e.test_alerting import alerting_policy
from tests.notify_receivers import robot
from tests.postgres import DEFAULT_PG_URL, postgres_database

#: 21:00 on a working day: contractors' route, no key period.
NOW = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)


def open_alerts(db: Database, count: int) -> None:
    agent_id = str(uuid.uuid4())
    batch = 500
    for start in range(0, count, batch):
        made = [
            Event(id=uuid.uuid4(), seq=None, time=NOW, agent_id=uuid.UUID(agent_id),
                  host="ws-bench", kind="account.tamper", severity=Severity.HIGH,
                  rule_id="accounts.tamper", policy_version=None,
                  summary=f"外包账号 wb_{i} 清除了历史记录",
                  evidence={"account": f"wb_{i}", "what": "history"})
            for i in range(start, min(count, start + batch))
        ]
        with db.write() as conn:
            group_events(conn, agent_id, made, NOW)


def throughput(url: str, count: int) -> dict[str, float]:
    db = Database.from_settings(CollectorSettings(database_url=url))
    migrate.upgrade(db)
    router = Router(db, CurrentPolicy(db, POLICIES, None), {}, b"bench-key", "https://collector",
                    clock=lambda: NOW)
    router.tick(NOW - timedelta(days=1))  # takes the lease and sets the cursor
    open_alerts(db, count)
    ctx = router.context(NOW)
    assert ctx is not None
    started = time.perf_counter()
    while router.route_changes(ctx):
        pass
    routed = time.perf_counter() - started
    later = router.context(NOW + timedelta(seconds=30))
    assert later is not None
    started = time.perf_counter()
    router.flush_groups(later)
    flushed = time.perf_counter() - started
    with db.read() as conn:
        queued = conn.exec_driver_sql("SELECT COUNT(*) FROM notifications").scalar()
    router.close()
    db.dispose()
    return {"routed_per_s": count / routed, "flushed_per_s": count / flushed,
            "queued": float(queued or 0)}


def latency(work: Path, database_url: str, samples: int) -> list[float]:
    with robot("dingtalk") as dingtalk:
        collector = Collector(home=work, database_url=database_url)
        policies = alerting_policy(work)
        data = yaml.safe_load((policies / "alerting.yaml").read_text())
        data["routes"] = [r for r in data["routes"] if r["name"] != "e2e-hook"]
        (policies / "alerting.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
        collector.extra_env.update({
            "COURTGUARD_COLLECTOR_POLICY_DIR": str(policies),
            "COURTGUARD_COLLECTOR_NOTIFY_CHANNELS": json.dumps({"dingtalk": {
                "type": "dingtalk", "url": dingtalk.url, "secret": dingtalk.secret,
                "rate_per_minute": 6000, "burst": 100}}),
        })
        collector.init()
        collector.start()
        try:
            agent = Agent(home=work / "ws", collector=collector, settings={})
            agent.home.mkdir(parents=True, exist_ok=True)
            agent.enroll()
            credentials = json.loads((agent.data_dir / "credentials.json").read_text())
            figures = []
            with collector.http() as client:
                for n in range(samples):
                    # A host per sample: each event opens an alert in a group of its own.
                    [item] = synthetic_events(credentials["agent_id"], n + 1, 1, host=f"ws-{n}")
                    before = len(dingtalk.accepted())
                    started = time.time()
                    response = client.post("/api/v1/events",
                                           content=batch_body(credentials["agent_id"], [item]),
                                           headers=agent_headers(credentials))
                    response.raise_for_status()
                    wait_until(lambda b=before: len(dingtalk.accepted()) > b, 20,
                               "the robot's message")
                    figures.append(dingtalk.accepted()[-1].at - started)
                    time.sleep(0.2)
            return figures
        finally:
            collector.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)")
    for backend in args.backends.split(","):
        with ExitStack() as stack:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cg-alerting-")))
            if backend == "sqlite":
                url = f"sqlite:///{work / 'bench.db'}"
                url2 = f"sqlite:///{work / 'latency.db'}"
            else:
                url = stack.enter_context(postgres_database(DEFAULT_PG_URL))
                url2 = stack.enter_context(postgres_database(DEFAULT_PG_URL))
            figures = throughput(url, args.alerts)
            print(f"{backend}: {args.alerts} alerts routed and grouped at "
                  f"{figures['routed_per_s']:,.0f} alerts/s; groups flushed into "
                  f"{figures['queued']:.0f} queued notifications at "
                  f"{figures['flushed_per_s']:,.0f} alerts/s")
            waits = latency(work / "collector", url2, args.samples)
            p90 = statistics.quantiles(waits, n=10)[-1]
            print(f"{backend}: event POST -> robot message, group wait 0: median "
                  f"{statistics.median(waits) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, "
                  f"max {max(waits) * 1000:.0f} ms ({len(waits)} samples)")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
