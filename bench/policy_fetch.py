"""Policy fetch cost: simulated agents polling an unchanged policy; the collector's CPU per poll.

One real collector process (HTTPS by default, SQLite or PostgreSQL) holds
``--agents`` enrolled agents (rows written straight into the store, each with
its own secret) and one published bundle. Load generators in separate
processes send ``GET /api/v1/policy`` with the bundle's ETag, each request as
a different agent, so every answer is a 304. The collector's CPU time
(user + system, from /proc via psutil) is read before and after each phase:

1. ``burst-keepalive``: as fast as the generators can, on kept-alive
   connections: the collector's CPU per poll and the polls/s this machine
   sustained;
2. ``burst-new-conn``: the same with a new TCP (and TLS) connection per poll,
   which is what a 60 s poller gets (the server's keep-alive is 5 s);
3. ``schedule``: every agent once per ``--interval`` seconds at its own
   random offset, new connection per poll, for ``--seconds``: the collector's
   CPU share at the real rate, and the CPU per 1,000 agents.

It prints figures and never fails on one. The generators run on the same
machine and take CPU from it; say what else ran when quoting the numbers.
Python's client-side TLS is the expensive part of a generator: on a small
shared machine it cannot offer 167 new HTTPS connections a second, and polls
it could not send show as ``FAILED`` (pool or connect timeouts on the client);
then measure HTTPS with fewer ``--agents`` and the full fleet with
``--plain-http``, and scale per 1,000 agents.

    .venv/bin/python bench/policy_fetch.py [--agents 10000] [--interval 60] [--seconds 60]
        [--backends sqlite,postgres] [--plain-http]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psutil
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.events import utcnow
from collector import credentials
from collector.store.tables import agents as agents_table
from tests.e2e.harness import POLICIES, Collector
from tests.postgres import DEFAULT_PG_URL, postgres_database

Agent = tuple[str, str]  # (agent_id, secret)
#: Failed polls by exception name, per generator process.
ERRORS: dict[str, int] = {}


def add_agents(collector: Collector, count: int) -> list[Agent]:
    """Enrolled agents as rows, in one transaction (enrolling 10,000 over HTTP takes minutes)."""
    made = [(str(uuid.uuid4()), credentials.new_agent_secret()) for _ in range(count)]
    now = utcnow()
    engine = collector.engine()
    with engine.begin() as conn:
        conn.execute(
            sa.insert(agents_table),
            [
                {
                    "id": agent_id,
                    "hostname": f"bench-{i:05d}",
                    "group": "default",
                    "enrolled_at": now,
                    "secret_hash": credentials.digest(secret),
                    "agent_version": "bench",
                    "max_seq": 0,
                }
                for i, (agent_id, secret) in enumerate(made)
            ],
        )
    engine.dispose()
    return made


async def _poll(
    client: httpx.AsyncClient, agent: Agent, etag: str, close: bool, latencies: list[float]
) -> int:
    headers = {"Authorization": f"Bearer {agent[0]}:{agent[1]}", "If-None-Match": etag}
    if close:
        headers["Connection"] = "close"
    started = time.perf_counter()
    try:
        response = await client.get("/api/v1/policy", headers=headers)
    except httpx.HTTPError as exc:
        ERRORS[type(exc).__name__] = ERRORS.get(type(exc).__name__, 0) + 1
        return 0  # counted as a poll that was not answered 304
    latencies.append(time.perf_counter() - started)
    return response.status_code


def _client(url: str, ca: str | None, close: bool) -> httpx.AsyncClient:
    import ssl

    verify: Any = ssl.create_default_context(cafile=ca) if ca else False
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=0 if close else 64)
    return httpx.AsyncClient(base_url=url, verify=verify, timeout=30, limits=limits)


def burst_worker(
    url: str,
    ca: str | None,
    agents: list[Agent],
    etag: str,
    close: bool,
    seconds: float,
    concurrency: int,
    start_at: float,
    queue: Any,
) -> None:
    """One generator process: ``concurrency`` loops polling as fast as answers come."""

    async def run() -> tuple[int, int, list[float]]:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        await asyncio.sleep(max(0.0, start_at - time.time()))
        deadline = time.monotonic() + seconds
        async with _client(url, ca, close) as client:

            async def loop() -> None:
                while time.monotonic() < deadline:
                    status = await _poll(client, random.choice(agents), etag, close, latencies)
                    statuses[status] = statuses.get(status, 0) + 1

            await asyncio.gather(*(loop() for _ in range(concurrency)))
        return statuses.get(304, 0), sum(statuses.values()), latencies

    queue.put((*asyncio.run(run()), dict(ERRORS)))


def schedule_worker(
    url: str,
    ca: str | None,
    agents: list[Agent],
    etag: str,
    interval: float,
    seconds: float,
    start_at: float,
    queue: Any,
) -> None:
    """One generator process: each of its agents polls once per interval at its own offset."""

    async def run() -> tuple[int, int, list[float]]:
        latencies: list[float] = []
        counts = {"304": 0, "all": 0}
        await asyncio.sleep(max(0.0, start_at - time.time()))
        start = time.monotonic()
        offsets = sorted((random.uniform(0, interval), agent) for agent in agents)
        # Fewer requests in flight than pool connections: httpcore rescans its queue of
        # waiting requests on every change, which costs O(n^2) with thousands waiting.
        in_flight = asyncio.Semaphore(48)
        async with _client(url, ca, close=True) as client:

            async def one(at: float, agent: Agent) -> None:
                while at < seconds:
                    await asyncio.sleep(max(0.0, start + at - time.monotonic()))
                    async with in_flight:
                        status = await _poll(client, agent, etag, True, latencies)
                    counts["all"] += 1
                    counts["304"] += status == 304
                    at += interval

            await asyncio.gather(*(one(at, agent) for at, agent in offsets))
        return counts["304"], counts["all"], latencies

    queue.put((*asyncio.run(run()), dict(ERRORS)))


def run_phase(
    name: str, server: psutil.Process, target: Any, args_for: Any, workers: int, agents: list[Agent]
) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    slices = [agents[i::workers] for i in range(workers)]
    # Every generator starts at one wall-clock instant, after its interpreter has imported.
    start_at = time.time() + 4.0
    processes = [
        ctx.Process(target=target, args=(*args_for(part), start_at, queue)) for part in slices
    ]
    for process in processes:
        process.start()
    time.sleep(max(0.0, start_at - time.time()))
    before, wall = server.cpu_times(), time.monotonic()
    results = [queue.get(timeout=600) for _ in processes]
    after, elapsed = server.cpu_times(), time.monotonic() - wall
    for process in processes:
        process.join()
    cpu = after.user + after.system - before.user - before.system
    ok = sum(r[0] for r in results)
    total = sum(r[1] for r in results)
    latencies = sorted(x for r in results for x in r[2])
    errors: dict[str, int] = {}
    for result in results:
        for failure, count in result[3].items():
            errors[failure] = errors.get(failure, 0) + count
    figures = {
        "polls": total,
        "not_modified": ok,
        "seconds": elapsed,
        "rate": total / elapsed,
        "cpu_s": cpu,
        "cpu_ms_per_poll": cpu / total * 1000 if total else float("nan"),
        "cpu_share": cpu / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000 if latencies else float("nan"),
    }
    print(
        f"  {name:16s} {figures['rate']:7.0f} polls/s  {total} polls ({ok} answered 304) in "
        f"{elapsed:.1f} s  collector CPU {figures['cpu_ms_per_poll']:.3f} ms/poll, "
        f"{figures['cpu_share'] * 100:.0f}% of one core  latency p50 {figures['p50_ms']:.1f} ms"
        f" p95 {figures['p95_ms']:.1f} ms" + (f"  FAILED {errors}" if errors else ""),
        flush=True,
    )
    return figures


def app_cost(collector: Collector, agents: list[Agent], polls: int) -> float:
    """CPU ms per unchanged poll inside the application alone (no HTTP server, TCP or TLS).

    The ASGI app is called directly with the request a poller sends, each
    time as a different agent, after one warm-up pass over the agents.
    """
    from collector.app import create_app
    from collector.settings import CollectorSettings

    settings = CollectorSettings(
        data_dir=collector.data_dir,
        database_url=collector.database_url,
        tls=False,
        policy_dir=POLICIES,
    )
    app = create_app(settings)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    def scope(agent: Agent, etag: str | None) -> dict[str, Any]:
        headers = [(b"authorization", f"Bearer {agent[0]}:{agent[1]}".encode()), (b"host", b"b")]
        if etag:
            headers.append((b"if-none-match", etag.encode()))
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "https",
            "path": "/api/v1/policy",
            "raw_path": b"/api/v1/policy",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2),
            "state": {},
        }

    async def run() -> float:
        await app(scope(agents[0], None), receive, send)
        etag = dict(sent[0]["headers"])[b"etag"].decode()
        for agent in agents:  # warm: every identity checked once against the store
            await app(scope(agent, etag), receive, send)
        sent.clear()
        started = time.process_time()
        for index in range(polls):
            await app(scope(agents[index % len(agents)], etag), receive, send)
        cost = (time.process_time() - started) / polls * 1000
        assert all(m["status"] == 304 for m in sent if m["type"] == "http.response.start")
        return cost

    return asyncio.run(run())


def run_backend(name: str, database_url: str, args: argparse.Namespace, home: Path) -> None:
    collector = Collector(home=home, database_url=database_url, tls=not args.plain_http)
    collector.init()
    agents = add_agents(collector, args.agents)
    collector.cli("policy", "publish", str(POLICIES), "--note", "bench", "--author", "bench")
    in_app = app_cost(collector, agents, 20_000)
    print(
        f"{name}: application alone (ASGI app called in-process, no server/TCP/TLS): "
        f"{in_app:.3f} ms CPU per unchanged poll",
        flush=True,
    )
    collector.start()
    try:
        ca = str(collector.ca_file) if collector.tls else None
        with collector.http() as http:
            first = http.get(
                "/api/v1/policy", headers={"Authorization": f"Bearer {agents[0][0]}:{agents[0][1]}"}
            )
            first.raise_for_status()
        etag = first.headers["ETag"]
        assert collector.process is not None
        server = psutil.Process(collector.process.pid)
        scheme = "HTTPS" if collector.tls else "HTTP"
        print(
            f"{name}: {args.agents} agents, bundle {len(first.content)} bytes, {scheme}, "
            f"{args.workers} generator processes",
            flush=True,
        )
        before = server.cpu_times()
        time.sleep(args.idle_seconds)
        after = server.cpu_times()
        idle_share = (after.user + after.system - before.user - before.system) / args.idle_seconds
        print(
            f"  idle             collector CPU {idle_share * 100:.2f}% of one core with no polls "
            f"(silent-agent checks over {args.agents} agents, retention)",
            flush=True,
        )
        run_phase(
            "burst-keepalive",
            server,
            burst_worker,
            lambda part: (collector.url, ca, part, etag, False, args.burst_seconds, 16),
            args.workers,
            agents,
        )
        run_phase(
            "burst-new-conn",
            server,
            burst_worker,
            lambda part: (collector.url, ca, part, etag, True, args.burst_seconds, 8),
            args.workers,
            agents,
        )
        scheduled = run_phase(
            "schedule",
            server,
            schedule_worker,
            lambda part: (collector.url, ca, part, etag, args.interval, args.seconds),
            args.workers,
            agents,
        )
        per_thousand = scheduled["cpu_share"] * 1000 / args.agents
        marginal = (scheduled["cpu_share"] - idle_share) * scheduled["seconds"]
        marginal_ms = marginal / scheduled["polls"] * 1000 if scheduled["polls"] else float("nan")
        print(
            f"  => {args.agents} agents every {args.interval:g} s: "
            f"{args.agents / args.interval:.0f} polls/s offered, {scheduled['rate']:.0f} served; "
            f"collector CPU {per_thousand * 100:.2f}% of one core per 1,000 agents "
            f"({scheduled['cpu_ms_per_poll']:.3f} ms per unchanged poll, "
            f"{marginal_ms:.3f} ms above the idle baseline)",
            flush=True,
        )
    finally:
        collector.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the schedule phase")
    parser.add_argument("--burst-seconds", type=float, default=15.0)
    parser.add_argument("--idle-seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--plain-http", action="store_true")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp, ExitStack() as stack:
        for backend in args.backends.split(","):
            home = Path(tmp) / backend
            home.mkdir()
            if backend == "sqlite":
                url = f"sqlite:///{home / 'collector.db'}"
            else:
                url = stack.enter_context(postgres_database(args.pg_url))
            run_backend(backend, url, args, home)


if __name__ == "__main__":
    main()
