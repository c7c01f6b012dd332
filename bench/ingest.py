"""Ingest throughput: events per second into one collector over HTTP, on SQLite and PostgreSQL.

Simulated agents (enrolled for real) post pre-built gzip batches of 500
events as fast as the collector acknowledges them, from a few concurrent
connections. Batches are built before the clock starts so the client's own
CPU does not count against the collector. Prints one line per backend and
the PostgreSQL/SQLite ratio; it never fails on a figure.

    .venv/bin/python bench/ingest.py [--seconds 20] [--backends sqlite,postgres] [--tls]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.harness import (
    Collector,
    agent_headers,
    batch_body,
    synthetic_events,
)
from tests.postgres import DEFAULT_PG_URL, postgres_database


def enroll_agents(collector: Collector, count: int) -> list[dict[str, Any]]:
    token = collector.create_token("--uses", str(count))
    agents = []
    with collector.http() as client:
        for i in range(count):
            response = client.post(
                "/api/v1/enroll",
                json={"token": token, "hostname": f"bench-{i}", "agent_version": "bench"},
            )
            response.raise_for_status()
            agents.append(response.json())
    return agents


def build_batches(
    agents: list[dict[str, Any]], batch_size: int, total_events: int
) -> list[tuple[dict[str, str], bytes]]:
    batches = []
    next_seq = {a["agent_id"]: 1 for a in agents}
    per_round = len(agents) * batch_size
    for _ in range(max(1, total_events // per_round)):
        for agent in agents:
            agent_id = agent["agent_id"]
            events = synthetic_events(agent_id, next_seq[agent_id], batch_size, host=agent_id[:8])
            next_seq[agent_id] += batch_size
            batches.append((agent_headers(agent), batch_body(agent_id, events)))
    return batches


async def send_all(
    collector: Collector,
    batches: list[tuple[dict[str, str], bytes]],
    concurrency: int,
    seconds: float,
) -> tuple[int, list[float], float]:
    queue: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()
    for item in batches:
        queue.put_nowait(item)
    latencies: list[float] = []
    accepted = 0
    verify = collector.ssl_context()
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal accepted
        async with httpx.AsyncClient(base_url=collector.url, verify=verify, timeout=60) as client:
            while time.monotonic() < deadline and not queue.empty():
                headers, body = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post("/api/v1/events", content=body, headers=headers)
                if response.status_code in (429, 503):
                    retry = float(response.headers.get("Retry-After", "1"))
                    queue.put_nowait((headers, body))
                    await asyncio.sleep(retry)
                    continue
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)
                accepted += len(response.json()["accepted"])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return accepted, latencies, time.perf_counter() - started


def run_backend(name: str, database_url: str, args: argparse.Namespace, home: Path) -> float:
    collector = Collector(home=home, database_url=database_url, tls=args.tls)
    collector.init()
    collector.start()
    try:
        agents = enroll_agents(collector, args.agents)
        batches = build_batches(agents, args.batch, int(args.seconds * args.max_rate))
        assert collector.process is not None
        server = psutil.Process(collector.process.pid)
        cpu_before = server.cpu_times()
        accepted, latencies, elapsed = asyncio.run(
            send_all(collector, batches, args.concurrency, args.seconds)
        )
        cpu_after = server.cpu_times()
        server_cpu = (
            cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
        ) / elapsed
        stored = collector.query("SELECT COUNT(*) FROM events WHERE kind = 'agent.test'")[0][0]
    finally:
        collector.stop()
    rate = accepted / elapsed
    print(
        f"{name:9s} {rate:9.0f} events/s  ({accepted} events in {elapsed:.1f}s, "
        f"{len(latencies)} batches of {args.batch}, {args.concurrency} connections, "
        f"{'HTTPS' if args.tls else 'HTTP'})  "
        f"batch latency median {statistics.median(latencies) * 1000:.1f} ms"
        f" p95 {sorted(latencies)[int(len(latencies) * 0.95)] * 1000:.1f} ms  "
        f"collector CPU {server_cpu * 100:.0f}% of one core  stored {stored}",
        flush=True,
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-rate", type=float, default=40000, help="events/s to pre-build for")
    parser.add_argument("--tls", action="store_true", help="HTTPS instead of plain HTTP")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp, ExitStack() as stack:
        for backend in args.backends.split(","):
            home = Path(tmp) / backend
            home.mkdir()
            if backend == "sqlite":
                url = f"sqlite:///{home / 'collector.db'}"
            else:
                url = stack.enter_context(postgres_database(args.pg_url))
            rates[backend] = run_backend(backend, url, args, home)
    if "sqlite" in rates and "postgres" in rates:
        print(f"ratio postgres/sqlite {rates['postgres'] / rates['sqlite']:.2f}")


if __name__ == "__main__":
    main()
