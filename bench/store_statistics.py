"""Console host and account filters on a SQLite store grown by ingest, before and after ANALYZE.

A real collector (plain HTTP, SQLite, its statistics check pushed out of the
way) takes ``--events`` events POSTed in batches of 500 by enrolled agents, the
way agents send them: 200 hosts, 40 accounts, every severity. Then the
console's listing (``collector.console.data.events_listing``: the page plus the
capped per-severity counts) is timed for a host and an account filter, once
with the statistics the store has after migration and ingest, and once after
``collector.store_statistics.refresh`` (what the collector's schedule runs).
Prints medians and p90 with the load average; never fails on a figure.

    .venv/bin/python bench/store_statistics.py [--events 100000] [--runs 11]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import psutil
from starlette.datastructures import QueryParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.console import data
from collector.settings import CollectorSettings
from collector.store.database import Database
from collector.store_statistics import refresh
from tests.e2e.harness import Collector, agent_headers, batch_body, synthetic_events

SEVERITIES = ("info", "low", "medium", "high", "critical")
FILTERS = {"host=ws-042": "host=ws-042", "account=clerk07": "account=clerk07"}


def load_average() -> str:
    return ", ".join(f"{x:.1f}" for x in psutil.getloadavg()) + f" on {psutil.cpu_count()} CPUs"


def ingest(collector: Collector, total: int, agents: int = 8, size: int = 500) -> float:
    token = collector.create_token("--uses", str(agents))
    started = time.perf_counter()
    with collector.http(timeout=120) as client:
        enrolled = []
        for a in range(agents):
            response = client.post("/api/v1/enroll", json={
                "token": token, "hostname": f"bench-{a}", "agent_version": "bench"})
            response.raise_for_status()
            enrolled.append(response.json())
        sent, seq = 0, 1
        while sent < total:
            for agent in enrolled:
                batch = synthetic_events(agent["agent_id"], seq, size)
                for i, item in enumerate(batch):
                    n = sent + i
                    item.update(host=f"ws-{n % 200:03d}", kind="account.session",
                                severity=SEVERITIES[n % len(SEVERITIES)])
                    item["evidence"] = {"account": f"clerk{n % 40:02d}", "action": "open",
                                        "session_id": str(n)}
                response = client.post("/api/v1/events", headers=agent_headers(agent),
                                       content=batch_body(agent["agent_id"], batch))
                response.raise_for_status()
                sent += size
            seq += size
    return time.perf_counter() - started


def timed(call: Callable[[], Any], runs: int) -> tuple[float, float]:
    call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]


def measure(db: Database, label: str, runs: int) -> None:
    for name, query in FILTERS.items():
        params = QueryParams(query)
        median, p90 = timed(lambda params=params: data.events_listing(db, params, UTC), runs)
        print(f"[{label}] events, {name:<18} median {median:7.1f} ms  p90 {p90:7.1f} ms  "
              f"(load {load_average()})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    print(f"load average before: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
        home = Path(tmp)
        url = f"sqlite:///{home / 'collector.db'}"
        collector = Collector(home=home, database_url=url, tls=False)
        collector.extra_env["COURTGUARD_COLLECTOR_STATISTICS_INTERVAL_S"] = str(10 * 24 * 3600)
        collector.init()
        collector.start()
        try:
            seconds = ingest(collector, args.events)
        finally:
            collector.stop()
        print(f"ingested {args.events:,} events through POST /api/v1/events in {seconds:.0f} s",
              flush=True)
        db = Database.from_settings(CollectorSettings(database_url=url, tls=False, data_dir=home))
        with db.write() as conn:
            conn.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = 'events'")
        db.engine.dispose()
        measure(db, "after ingest, no statistics for events", args.runs)
        started = time.perf_counter()
        analyzed = refresh(db)
        print(f"refresh analyzed {[c.table for c in analyzed]} in "
              f"{(time.perf_counter() - started) * 1000:.0f} ms", flush=True)
        measure(db, "after the scheduled refresh", args.runs)
        db.dispose()
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
