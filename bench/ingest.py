"""Ingest throughput of one collector over HTTPS as a ratio to its stack's floor, per engine.

Simulated agents (enrolled for real) post gzip batches of 500 events, a
realistic mix of every kind an agent sends with the evidence its detector
writes (``bench/ingest_mix.py``), as fast as the collector acknowledges them,
from a few concurrent connections. The same batches, from the same client,
then go to the floor (``bench/ingest_floor.py``): a minimal FastAPI +
pydantic service writing the same rows into the same ``events`` table on the
same engine. Batches are built before the clock starts, so the client's own
CPU does not count against either server.

Each backend runs ``--runs`` times (collector, then floor, on fresh
databases); the medians and the collector/floor ratio are printed, with the
targets of issue 17 (SQLite >= 0.75, PostgreSQL >= 0.6). It never fails on a
figure.

    .venv/bin/python bench/ingest.py [--seconds 15] [--runs 3] [--backends sqlite,postgres]
        [--profile stacks.txt]   # py-spy samples of the collector; prints the top functions
        [--alert-groups-cost]    # each run also without migration 0019's alert_groups triggers

``--alert-groups-cost`` isolates what the triggers keeping ``alert_groups`` add
to ingest: every run measures the collector as migrated, then the collector on
a fresh database whose triggers were dropped after migrating, then the floor,
and prints the medians' ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_mix import Mix, missing_kinds

from agent.events import utcnow
from tests.e2e.harness import (
    BIN,
    Collector,
    agent_headers,
    free_port,
    spawn,
    stop_process,
    wait_until,
)
from tests.postgres import DEFAULT_PG_URL, postgres_database

TARGETS = {"sqlite": 0.75, "postgres": 0.6}
ALERT_GROUPS_MIGRATION = (Path(__file__).resolve().parents[1]
                          / "collector/migrations/versions/0019_alert_groups.py")
Batch = tuple[dict[str, str], bytes]


@dataclass
class Run:
    rate: float
    accepted: int
    elapsed: float
    latencies: list[float]
    cpu: float  # server CPU, cores

    def line(self, name: str, batch: int) -> str:
        lat = sorted(self.latencies)
        return (f"{name:22s} {self.rate:8.0f} events/s  ({self.accepted} in {self.elapsed:.1f}s, "
                f"batches of {batch}; latency median {statistics.median(lat) * 1000:.0f} ms, "
                f"p95 {lat[int(len(lat) * 0.95)] * 1000:.0f} ms; "
                f"server CPU {self.cpu * 100:.0f}% of a core, "
                f"{self.cpu / self.rate * 1e6:.0f} µs/event)")


def enroll_agents(collector: Collector, count: int) -> list[dict[str, Any]]:
    token = collector.create_token("--uses", str(count))
    agents = []
    with collector.http() as client:
        for i in range(count):
            response = client.post(
                "/api/v1/enroll",
                json={"token": token, "hostname": f"ws-{i:04d}", "agent_version": "bench"},
            )
            response.raise_for_status()
            agents.append(response.json())
    return agents


def build_batches(mix: Mix, agents: list[dict[str, Any]], batch_size: int,
                  total_events: int) -> list[Batch]:
    batches = []
    next_seq = {a["agent_id"]: 1 for a in agents}
    for _ in range(max(1, total_events // (len(agents) * batch_size))):
        for i, agent in enumerate(agents):
            agent_id = agent["agent_id"]
            events = mix.events(agent_id, next_seq[agent_id], batch_size, host=f"ws-{i:04d}")
            next_seq[agent_id] += batch_size
            raw = json.dumps({"agent_id": agent_id, "sent_at": utcnow().isoformat(),
                              "events": events}, ensure_ascii=False).encode()
            batches.append((agent_headers(agent), gzip.compress(raw, compresslevel=1)))
    return batches


async def send_all(url: str, verify: Any, batches: list[Batch], concurrency: int,
                   seconds: float) -> tuple[int, list[float], float]:
    queue: asyncio.Queue[Batch] = asyncio.Queue()
    for item in batches:
        queue.put_nowait(item)
    latencies: list[float] = []
    accepted = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal accepted
        async with httpx.AsyncClient(base_url=url, verify=verify, timeout=120) as client:
            while time.monotonic() < deadline and not queue.empty():
                headers, body = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post("/api/v1/events", content=body, headers=headers)
                if response.status_code in (429, 503):
                    queue.put_nowait((headers, body))
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    continue
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)
                accepted += len(response.json()["accepted"])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return accepted, latencies, time.perf_counter() - started


def measure(pid: int, send: Callable[[], tuple[int, list[float], float]]) -> Run:
    server = psutil.Process(pid)
    before = server.cpu_times()
    accepted, latencies, elapsed = send()
    after = server.cpu_times()
    cpu = (after.user + after.system - before.user - before.system) / elapsed
    return Run(accepted / elapsed, accepted, elapsed, latencies, cpu)


def profile(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Sample the collector with py-spy for ``seconds``, as collapsed stacks in ``output``."""
    return subprocess.Popen(
        [str(BIN / "py-spy"), "record", "--pid", str(pid), "--duration", str(int(seconds)),
         "--rate", "250", "--nonblocking", "--format", "raw", "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_entries(collapsed: Path, count: int = 20) -> str:
    """The functions with the most samples: on the stack (inclusive) and on top of it (self)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        n = int(samples)
        total += n
        # "function (file:line)" -> "function (file)": one entry per function, not per line
        frames = [frame.rsplit(":", 1)[0] + ")" if ":" in frame else frame
                  for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
    out = [f"{total} samples"]
    for title, table in (("inclusive", inclusive), ("self", own)):
        out.append(f"-- top {count} by {title} share")
        for frame, n in sorted(table.items(), key=lambda item: -item[1])[:count]:
            out.append(f"{n / total * 100:5.1f}%  {frame}")
    return "\n".join(out)


def floor_schema(url: str, agents: list[dict[str, Any]]) -> None:
    """The collector's own schema (every index and full-text trigger) and the agents' rows."""
    from collector.store.database import Database, make_engine
    from collector.store.migrate import upgrade
    from collector.store.tables import agents as agents_table

    db = Database(make_engine(url))
    try:
        upgrade(db)
        with db.write() as conn:
            conn.execute(sa.insert(agents_table), [
                {"id": a["agent_id"], "hostname": a["agent_id"][:8], "group": "default",
                 "enrolled_at": utcnow(), "secret_hash": "0" * 64} for a in agents])
    finally:
        db.engine.dispose()


def run_floor(url: str, collector: Collector, batches: list[Batch], args: argparse.Namespace,
              log: Path) -> Run:
    port = free_port()
    tls = collector.data_dir / "tls"
    process = spawn("ingest floor", [
        str(BIN / "python"), str(Path(__file__).resolve().parent / "ingest_floor.py"),
        "--database", url, "--port", str(port),
        "--certfile", str(tls / "server.pem"), "--keyfile", str(tls / "server.key"),
    ], dict(os.environ), log)
    base = f"https://127.0.0.1:{port}"
    verify = collector.ssl_context()
    try:
        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"the floor exited: {log.read_text()[-2000:]}")
            try:
                return httpx.get(f"{base}/health", verify=verify, timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 120, "the floor service listening")
        return measure(process.pid, lambda: asyncio.run(
            send_all(base, verify, batches, args.concurrency, args.seconds)))
    finally:
        stop_process(process)


def drop_alert_group_triggers(url: str) -> None:
    """Drop the triggers (and PostgreSQL's functions) that keep ``alert_groups``, as 0019 does."""
    from collector.store.database import Database, make_engine

    spec = importlib.util.spec_from_file_location("alert_groups_migration",
                                                  ALERT_GROUPS_MIGRATION)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    db = Database(make_engine(url))
    try:
        with db.write() as conn:
            for statement in migration.SQLITE_DROP if db.is_sqlite else migration.PG_DROP:
                conn.exec_driver_sql(statement)
    finally:
        db.engine.dispose()


def run_collector(backend: str, home: Path, stack: ExitStack, mix: Mix,
                  args: argparse.Namespace,
                  alert_groups: bool = True) -> tuple[Run, Collector, list[Any], list[Batch]]:
    """The collector on a fresh database (without the alert_groups triggers if asked)."""
    home.mkdir()
    url = (f"sqlite:///{home / 'collector.db'}" if backend == "sqlite"
           else stack.enter_context(postgres_database(args.pg_url)))
    collector = Collector(home=home, database_url=url, tls=True)
    collector.init()
    if not alert_groups:
        drop_alert_group_triggers(url)
    collector.start()
    try:
        agents = enroll_agents(collector, args.agents)
        batches = build_batches(mix, agents, args.batch, int(args.seconds * args.max_rate))
        assert collector.process is not None
        sampler = (profile(collector.process.pid, args.seconds, args.profile)
                   if args.profile and alert_groups else None)
        ours = measure(collector.process.pid, lambda: asyncio.run(send_all(
            collector.url, collector.ssl_context(), batches, args.concurrency, args.seconds)))
        if sampler is not None:
            sampler.wait(timeout=args.seconds + 60)
            print(top_entries(args.profile), flush=True)
    finally:
        collector.stop()
    return ours, collector, agents, batches


def one_run(backend: str, home: Path, stack: ExitStack, mix: Mix, args: argparse.Namespace,
            number: int) -> tuple[Run, Run, Run | None]:
    """The collector, the collector without the alert_groups triggers (if asked), the floor.

    With and without the triggers take turns going first, so a load that changes during
    the run does not always favour the same one.
    """
    bare: Run | None = None
    if args.alert_groups_cost and number % 2:
        bare = run_collector(backend, home / "bare", stack, mix, args, alert_groups=False)[0]
    ours, collector, agents, batches = run_collector(backend, home / "collector", stack, mix,
                                                     args)
    if args.alert_groups_cost and bare is None:
        bare = run_collector(backend, home / "bare", stack, mix, args, alert_groups=False)[0]
    floor_url = (f"sqlite:///{home / 'floor.db'}" if backend == "sqlite"
                 else stack.enter_context(postgres_database(args.pg_url)))
    floor_schema(floor_url, agents)
    floor = run_floor(floor_url, collector, batches, args, home / "floor.log")
    return ours, floor, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-rate", type=float, default=20000, help="events/s to pre-build for")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--profile", type=Path,
                        help="sample the collector with py-spy into this file; print its top")
    parser.add_argument("--alert-groups-cost", action="store_true",
                        help="also measure each run without the alert_groups triggers")
    args = parser.parse_args()
    missing = missing_kinds()
    if missing:
        parser.error(f"no template in bench/ingest_mix.py for: {', '.join(missing)}")
    mix = Mix()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    summary = []
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
        for backend in args.backends.split(","):
            ours: list[float] = []
            floors: list[float] = []
            bares: list[float] = []
            for run in range(args.runs):
                with ExitStack() as stack:
                    home = Path(tmp) / f"{backend}-{run}"
                    home.mkdir()
                    mine, floor, bare = one_run(backend, home, stack, mix, args, run)
                print(mine.line(f"{backend} courtguard #{run + 1}", args.batch), flush=True)
                if bare is not None:
                    print(bare.line(f"{backend} no groups #{run + 1}", args.batch), flush=True)
                    bares.append(bare.rate)
                print(floor.line(f"{backend} floor #{run + 1}", args.batch), flush=True)
                ours.append(mine.rate)
                floors.append(floor.rate)
            ratio = statistics.median(ours) / statistics.median(floors)
            summary.append(
                f"{backend:8s} courtguard {statistics.median(ours):7.0f} events/s, "
                f"floor {statistics.median(floors):7.0f} events/s (medians of {args.runs}): "
                f"ratio {ratio:.2f} (target >= {TARGETS.get(backend, 0):.2f})")
            if bares:
                summary.append(
                    f"{backend:8s} without the alert_groups triggers "
                    f"{statistics.median(bares):7.0f} events/s: with them "
                    f"{statistics.median(ours) / statistics.median(bares):.2f} of that")
    print("\n".join(summary))
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
