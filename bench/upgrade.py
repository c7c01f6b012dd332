"""Time from ``release publish`` (canary) and ``release promote`` to 100 agents on the new version.

One real collector (HTTPS, SQLite or PostgreSQL) holds ``--agents`` enrolled
agents (rows written straight into the store) running 0.13.0, a tenth of them
in group ``canary``, and release 0.13.0 published to all. Simulated agents,
in one separate process, speak the real HTTP API the way the agent does: a
heartbeat batch every ``--heartbeat-s`` (reporting the version they run), the
``release_sequence`` hint of its answer, ``GET /api/v1/release`` and, for a
newer version, ``GET /api/v1/release/package``, the signature verified with
the collector's public key (``agent.upgrade.release.check_release``), then
"installed": the next heartbeat reports the new version. No dpkg runs.

Phases, each timed from the command's start (the CLI's own start-up included):

1. **floor**: every agent downloads and verifies the same package once, as fast
   as the generator can: the transfer and verification cost alone;
2. **canary**: ``release publish 0.14.0 --group canary`` until every canary
   agent's heartbeat reports 0.14.0 (read from the agents table), while the
   others stay on 0.13.0 (checked);
3. **promote**: ``release promote 0.14.0`` until all agents report it.

It prints the figures, the ratio of the full rollout to the floor, and the
load average; it never fails on a figure.

    .venv/bin/python bench/upgrade.py [--agents 100] [--package-mb 4] [--heartbeat-s 2]
        [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import ssl
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.events import utcnow, uuid7
from agent.upgrade.release import ReleaseRefused, check_release
from agent.upgrade.versions import release_order
from collector import credentials
from collector.policy.signing import verifying_public_key
from collector.store.tables import agents as agents_table
from tests.agent.upgrade.debs import make_deb
from tests.e2e.harness import Collector, batch_body
from tests.postgres import DEFAULT_PG_URL, postgres_database

OLD, NEW = "0.13.0", "0.14.0"


def add_agents(collector: Collector, count: int) -> list[tuple[str, str, str]]:
    made = [(str(uuid.uuid4()), credentials.new_agent_secret(),
             "canary" if i < max(1, count // 10) else "default") for i in range(count)]
    engine = collector.engine()
    with engine.begin() as conn:
        conn.execute(sa.insert(agents_table), [
            {"id": agent_id, "hostname": f"bench-{i:04d}", "group": group,
             "enrolled_at": utcnow(), "secret_hash": credentials.digest(secret),
             "agent_version": OLD, "max_seq": 0}
            for i, (agent_id, secret, group) in enumerate(made)])
    engine.dispose()
    return made


def _heartbeat(agent_id: str, seq: int, version: str, interval: float) -> dict[str, Any]:
    return {"id": str(uuid7()), "seq": seq, "time": utcnow().isoformat(), "agent_id": agent_id,
            "host": "bench", "kind": "agent.heartbeat", "severity": "info",
            "summary": "心跳", "evidence": {
                "agent_version": version, "uptime_s": 1.0, "interval_s": interval,
                "policy_version": None, "spool_depth": 0, "spool_bytes": 0,
                "events_dropped": 0, "rss_bytes": 1 << 20, "cpu_percent": 0.1,
                "detectors": {}}}


class SimulatedAgent:
    def __init__(self, agent_id: str, secret: str, group: str, public_key: str) -> None:
        self.agent_id, self.group, self.public_key = agent_id, group, public_key
        self.headers = {"Authorization": f"Bearer {agent_id}:{secret}"}
        self.version = OLD
        self.seen = 0
        self.seq = 0
        self.downloads = 0

    async def _get(self, client: httpx.AsyncClient, path: str) -> httpx.Response:
        # A kept-alive connection the server closed meanwhile is retried, as the agent's
        # client does (agent/collector_http.py).
        for attempt in range(3):
            try:
                return await client.get(path, params={"arch": "amd64"}, headers=self.headers)
            except httpx.TransportError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def fetch_and_verify(self, client: httpx.AsyncClient) -> str | None:
        """The agent's round: target, download, verify; the version it would install."""
        meta = await self._get(client, "/api/v1/release")
        if meta.status_code != 200:
            return None
        self.seen = max(self.seen, meta.json()["id"])
        if release_order(meta.json()["version"], self.version) <= 0:
            return None
        package = await self._get(client, "/api/v1/release/package")
        self.downloads += 1
        try:
            release = await asyncio.to_thread(
                check_release, package.content, package.headers["X-Courtguard-Signature"],
                self.public_key, running_version=self.version, architecture="amd64",
                group=self.group, target_group=package.headers["X-Courtguard-Release-Group"])
        except ReleaseRefused:
            return None
        return release.control.version

    async def live(self, client: httpx.AsyncClient, interval: float, until: float) -> None:
        while time.time() < until:
            self.seq += 1
            body = batch_body(self.agent_id, [_heartbeat(self.agent_id, self.seq, self.version,
                                                         interval)])
            try:
                answer = await client.post("/api/v1/events", content=body, headers={
                    **self.headers, "Content-Type": "application/json",
                    "Content-Encoding": "gzip"})
                hint = answer.json().get("release_sequence") if answer.status_code == 200 \
                    else None
                if hint is not None and hint > self.seen:
                    installed = await self.fetch_and_verify(client)
                    if installed is not None:
                        self.version = installed  # "installed": the next heartbeat says so
                        continue
            except httpx.HTTPError:
                pass
            await asyncio.sleep(interval)


def _client(url: str, ca: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, verify=ssl.create_default_context(cafile=ca),
                             timeout=120, limits=httpx.Limits(max_connections=32))


def fleet_process(url: str, ca: str, agents: list[tuple[str, str, str]], public_key: str,
                  interval: float, seconds: float, queue: Any) -> None:
    async def run() -> float:
        async with _client(url, ca) as client:
            sims = [SimulatedAgent(a, s, g, public_key) for a, s, g in agents]
            # Floor: every agent downloads and verifies 0.13.0's package once, at once.
            started = time.perf_counter()
            for sim in sims:
                sim.version = "0.0.1"
            await asyncio.gather(*(sim.fetch_and_verify(client) for sim in sims))
            floor = time.perf_counter() - started
            for sim in sims:
                sim.version, sim.seen = OLD, 0
            queue.put(("floor", floor))
            await asyncio.gather(*(sim.live(client, interval, time.time() + seconds)
                                   for sim in sims))
            return sum(sim.downloads for sim in sims)

    queue.put(("downloads", asyncio.run(run())))


def on_version(collector: Collector, group: str | None) -> tuple[int, int]:
    where = "" if group is None else " AND \"group\" = :g"
    rows = collector.query(
        f"SELECT agent_version, count(*) FROM agents WHERE hostname LIKE 'bench-%'{where} "  # noqa: S608 (constant text)
        "GROUP BY agent_version", g=group)
    counts = {version: n for version, n in rows}
    return counts.get(NEW, 0), sum(counts.values())


def timed(collector: Collector, command: list[str], group: str | None, ceiling: float) -> float:
    started = time.perf_counter()
    collector.cli(*command)
    while time.perf_counter() - started < ceiling:
        done, total = on_version(collector, group)
        if done == total:
            return time.perf_counter() - started
        time.sleep(0.1)
    raise SystemExit(f"{' '.join(command)}: not every agent reached {NEW} in {ceiling:g} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--package-mb", type=float, default=4.0)
    parser.add_argument("--heartbeat-s", type=float, default=2.0)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="cg-upgrade-bench-") as tmp:
        work = Path(tmp)
        url = (f"sqlite:///{work / 'collector.db'}" if args.backend == "sqlite"
               else stack.enter_context(postgres_database(DEFAULT_PG_URL)))
        collector = Collector(home=work / "home", database_url=url)
        collector.home.mkdir()
        collector.init()
        collector.start()
        stack.callback(collector.stop)
        agents = add_agents(collector, args.agents)
        payload = os.urandom(int(args.package_mb * 2**20))
        for version in (OLD, NEW):
            (work / f"{version}.deb").write_bytes(make_deb(version, payload=payload))
        collector.cli("release", "publish", str(work / f"{OLD}.deb"))
        public_key = verifying_public_key(collector.data_dir)
        assert public_key is not None
        queue: Any = multiprocessing.get_context("spawn").Queue()
        seconds = 600.0
        fleet = multiprocessing.get_context("spawn").Process(
            target=fleet_process, args=(collector.url, str(collector.ca_file), agents,
                                        public_key, args.heartbeat_s, seconds, queue))
        fleet.start()
        stack.callback(fleet.kill)
        _, floor = queue.get(timeout=1800)
        canary = timed(collector, ["release", "publish", str(work / f"{NEW}.deb"),
                                   "--group", "canary"], "canary", seconds)
        outside_done, outside = on_version(collector, "default")
        promote = timed(collector, ["release", "promote", NEW], None, seconds)
        fleet.terminate()
        fleet.join(30)
        load = Path("/proc/loadavg").read_text().split()[:3]
        size = (work / f"{NEW}.deb").stat().st_size
        print(f"agents {args.agents} (canary {max(1, args.agents // 10)}), package "
              f"{size / 2**20:.1f} MiB, heartbeat every {args.heartbeat_s:g} s, {args.backend}")
        print(f"floor: {args.agents} downloads + verifications at once: {floor:.2f} s")
        print(f"canary: release publish --group canary → every canary agent on {NEW}: "
              f"{canary:.2f} s (outside the canary on {NEW}: {outside_done} of {outside})")
        print(f"promote: release promote → all {args.agents} agents on {NEW}: {promote:.2f} s")
        print(f"rollout (canary + promote) / floor: {(canary + promote) / floor:.2f}")
        print(f"load average: {' '.join(load)}")


if __name__ == "__main__":
    main()
