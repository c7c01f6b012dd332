"""A fleet enrolling at once: N simulated agents, one multi-use group token, one collector.

Every simulated agent opens its own HTTPS connection (as N workstations would) and sends
the enrollment request the agent sends, with its own hostname and host fingerprint; a
refusal other than the token's is retried with the agent's backoff (initial 1 s, doubling,
jittered), as a preseeded agent does. The time from the first request to the last agent
enrolled is compared with a floor measured in the same run: the same N fresh connections
each asking ``GET /healthz`` (TLS handshake and HTTP round trip, no store work). It never
fails on a figure; it checks that every agent is in the store once and the token was used N
times.

    .venv/bin/python bench/enroll.py [--agents 500] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.harness import Collector
from tests.postgres import DEFAULT_PG_URL, postgres_database


async def _one(url: str, context: ssl.SSLContext, method: str, path: str,
               body: dict[str, Any] | None, expect: int, stats: dict[str, Any]) -> float:
    """One simulated agent: a fresh connection, retried with backoff; seconds until done."""
    started = time.perf_counter()
    delay = 1.0
    while True:
        try:
            async with httpx.AsyncClient(base_url=url, verify=context, timeout=60) as client:
                response = await client.request(method, path, json=body)
            if response.status_code == expect:
                return time.perf_counter() - started
            stats["refused"][response.status_code] = stats["refused"].get(
                response.status_code, 0) + 1
            if response.status_code == 401:
                raise SystemExit(f"enrollment refused for good: {response.text}")
        except httpx.HTTPError as exc:
            stats["errors"][type(exc).__name__] = stats["errors"].get(type(exc).__name__, 0) + 1
        stats["retries"] += 1
        await asyncio.sleep(delay * (0.5 + random.random() / 2))
        delay = min(delay * 2, 30.0)


async def burst(url: str, ca: Path, requests: list[tuple[str, str, dict[str, Any] | None, int]]
                ) -> tuple[float, list[float], dict[str, Any]]:
    """All requests at once; (wall seconds, per-request seconds, refusals and errors)."""
    context = ssl.create_default_context(cafile=str(ca))
    stats: dict[str, Any] = {"refused": {}, "errors": {}, "retries": 0}
    started = time.perf_counter()
    durations = await asyncio.gather(*(
        _one(url, context, method, path, body, expect, stats)
        for method, path, body, expect in requests))
    return time.perf_counter() - started, list(durations), stats


def enroll_requests(token: str, agents: int) -> list[tuple[str, str, dict[str, Any] | None, int]]:
    return [("POST", "/api/v1/enroll", {
        "token": token, "hostname": f"bench-ws-{i:04d}", "agent_version": "0.1.0",
        "os": "Linux-bench", "host_fingerprint": hashlib.sha256(f"bench-{i}".encode()).hexdigest(),
    }, 201) for i in range(agents)]


def line(name: str, wall: float, durations: list[float], stats: dict[str, Any]) -> str:
    ordered = sorted(durations)
    return (f"{name:26s} {wall:7.2f} s to all done; per agent median "
            f"{statistics.median(ordered):.2f} s, p95 {ordered[int(len(ordered) * 0.95)]:.2f} s; "
            f"retries {stats['retries']}, refusals {stats['refused'] or '-'}, "
            f"errors {stats['errors'] or '-'}")


def run(database_url: str, agents: int, home: Path) -> None:
    collector = Collector(home=home, database_url=database_url)
    collector.init()
    token = collector.create_token("--group", "bench", "--uses", str(agents))
    collector.start()
    try:
        print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
        floor_wall, floor_durations, floor_stats = asyncio.run(burst(
            collector.url, collector.ca_file, [("GET", "/healthz", None, 200)] * agents))
        wall, durations, stats = asyncio.run(burst(
            collector.url, collector.ca_file, enroll_requests(token, agents)))
        print(f"load average after:  {Path('/proc/loadavg').read_text().strip()}")
        print(line(f"floor ({agents} × /healthz)", floor_wall, floor_durations, floor_stats))
        print(line(f"enroll ({agents} agents)", wall, durations, stats))
        print(f"ratio enroll / floor: {wall / floor_wall:.2f}; "
              f"{agents / wall:.0f} enrollments/s")
        enrolled = collector.query(
            "SELECT COUNT(*) FROM agents WHERE hostname LIKE 'bench-ws-%'")[0][0]
        uses = collector.query("SELECT uses FROM enrollment_tokens")[0][0]
        print(f"check: {enrolled} agents stored, token used {uses} times "
              f"({'ok' if enrolled == uses == agents else 'MISMATCH'})")
    finally:
        collector.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; backend {args.backend}")
    with tempfile.TemporaryDirectory(prefix="cg-bench-enroll-") as tmp:
        home = Path(tmp)
        if args.backend == "sqlite":
            run(f"sqlite:///{home / 'collector.db'}", args.agents, home)
        else:
            with postgres_database(os.environ.get("COURTGUARD_TEST_PG_URL", DEFAULT_PG_URL)) \
                    as url:
                run(url, args.agents, home)


if __name__ == "__main__":
    main()
