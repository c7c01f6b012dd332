"""A fleet at the shipped pacing against one collector on SQLite and two on one PostgreSQL.

Every simulated agent has real credentials (a row in ``agents`` with the
digest of its own secret, as enrollment makes it; enrolling tens of
thousands over HTTP takes minutes) and behaves as the shipped agent does with
its default settings (agent/settings.py):

- a heartbeat every ``heartbeat_interval_s`` (60 s), an ``agent.heartbeat``
  event with the evidence the daemon sends;
- the policy client: a fetch with the ETag it holds (``If-None-Match``) and
  ``Prefer: wait=<policy_wait_s>`` (50 s), started again at once while the
  collector holds it (a 304 after the wait), so every agent keeps one
  connection open; a fetch answered at once (the collector's
  ``policy_held_max`` reached) sends that agent to its timed poll
  (``policy_poll_s``, 60 s) on a new connection;
- detector events at ``--events-per-min`` per agent (a mix of
  ``outreach.flow``, ``outreach.dns``, ``account.session``, ``account.login``
  with their real typed evidence), shipped after ``batch_max_age_s`` (2 s) in
  one batch together with whatever else is waiting, one batch in flight per
  agent, resent as it was on a failure or a 503;
- a tenth of the agents lose the network for ``--outage-s`` from a third of
  the run: nothing leaves them, they keep spooling (their events plus
  ``--backlog`` events of a busy outage), and when it ends each waits its
  drain start jitter (0-5 s) and ships the backlog in batches of 500 at no
  more than ``drain_rate_eps`` (2,000/s).

An agent keeps an idle connection for ``keepalive_expiry_s`` (75 s), above its
heartbeat interval (60 s), so its heartbeats and event batches go out on one
kept ingest connection besides its held policy fetch's: two open connections
per agent. The generators do the same: each simulated agent keeps its ingest
connection, drops it after ``keepalive_expiry_s`` idle, and when the collector
closed it sends the batch once more at once on a new one (as
agent/collector_http.py does). Each simulated agent has its own connections
and credentials; they are plain asyncio streams (an httpx
client per agent costs too much for 20,000 of them). Generators run in
``--workers`` processes on this machine and take CPU from the collectors:
their own CPU is reported apart. A generator that cannot keep up shows as
schedule lag: the report gives it, and a run whose lag grew is not
"sustained" however good its latencies.

Reported per setup and fleet size: ingest latency p50/p99 (steady state and
the backlog burst apart), policy fetches held and answered at once (with the
latter's p50/p99), failed requests, the collectors' CPU (user + system of
every collector process, in cores; per request and per agent-minute), their
peak memory and open files, the generators' own CPU, the TCP+TLS connections
the agents opened, and whether the fleet was sustained: no failed requests,
steady-state ingest p99 under ``--p99-ms`` (500 ms), a generator lag under 2 s and the backlog
acknowledged before the run ended. A 503 is the collector's back-pressure
(``ingest_concurrency``), which the agent answers by waiting ``Retry-After``:
counted as deferred, not failed. The CPU per request (ingest, 503s included,
and policy polls together) is what the sizing in docs/scaling.md scales from;
the CPU per acknowledged batch puts all of it on the batches stored, which
is steadier when a starved collector answers many 503s. It never fails on a
figure.

    .venv/bin/python bench/fleet.py [--agents 1000,2000] [--seconds 120]
        [--setups sqlite,postgres2] [--plain-http] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import multiprocessing
import random
import resource
import shutil
import signal
import ssl
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.events import uuid7
from agent.settings import AgentSettings
from collector import credentials
from collector.store.tables import agents as agents_table
from tests.e2e.harness import POLICIES, Collector
from tests.postgres import DEFAULT_PG_URL, postgres_database

SHIPPED = AgentSettings(data_dir=Path("/nonexistent"), hostname="fleet")


# -- the fleet's agents --------------------------------------------------------------------------

def add_agents(collector: Collector, count: int) -> list[tuple[str, str]]:
    """``count`` enrolled agents as rows, each with its own secret (one transaction)."""
    made = [(str(uuid.uuid4()), credentials.new_agent_secret()) for _ in range(count)]
    now = datetime.now(UTC)
    engine = collector.engine()
    with engine.begin() as conn:
        for start in range(0, count, 5000):
            conn.execute(sa.insert(agents_table), [
                {"id": agent_id, "hostname": f"fleet-{start + i:05d}", "group": "default",
                 "enrolled_at": now, "secret_hash": credentials.digest(secret),
                 "agent_version": "fleet", "max_seq": 0}
                for i, (agent_id, secret) in enumerate(made[start:start + 5000])])
    engine.dispose()
    return made


def _outreach(now: str, kind: str) -> dict[str, Any]:
    remote = f"203.0.113.{random.randint(1, 254)}"
    evidence: dict[str, Any] = {
        "interface": "eth0", "interface_class": "wired", "first_seen": now, "last_seen": now,
        "count": random.randint(1, 40), "protocol": "tcp", "local_address": "198.18.4.21",
        "local_port": random.randint(30000, 60000), "remote_address": remote,
        "remote_port": 443, "hook": "output",
        "process": {"pid": random.randint(300, 30000), "name": "firefox",
                    "exe": "/usr/lib/firefox/firefox", "cmdline": "firefox", "user": "clerk"},
        "uid": 1000,
    }
    if kind == "outreach.dns":
        evidence.update(protocol="udp", remote_port=53, query_name="example.com")
    return evidence


def _account(now: str, kind: str) -> dict[str, Any]:
    evidence: dict[str, Any] = {"account": "wb_zhang", "role": "外包运维", "sponsor": "李法官"}
    if kind == "account.session":
        evidence.update(action=random.choice(["open", "close"]),
                        session_id=str(random.randint(1, 9999)), service="sshd",
                        remote_host="198.18.9.7")
    else:
        evidence.update(local_time=now[11:16], day_kind="workday", service="sshd",
                        remote_host="198.18.9.7", allowed_hours="08:30-18:00", source="auth.log")
    return evidence


#: Kind, severity, share of detector events, evidence builder.
MIX: list[tuple[str, str, float, Any]] = [
    ("outreach.flow", "high", 0.55, _outreach),
    ("outreach.dns", "medium", 0.2, _outreach),
    ("account.session", "info", 0.15, _account),
    ("account.login", "medium", 0.1, _account),
]


def detector_event(agent_id: str, host: str, seq: int) -> bytes:
    kind, severity, _share, build = random.choices(MIX, weights=[m[2] for m in MIX])[0]
    now = datetime.now(UTC).isoformat()
    return json.dumps({
        "id": str(uuid7()), "seq": seq, "time": now, "agent_id": agent_id, "host": host,
        "kind": kind, "severity": severity, "rule_id": f"{kind}.fleet",
        "summary": f"{kind} 模拟事件", "evidence": build(now, kind),
    }, ensure_ascii=False).encode()


def heartbeat_event(agent_id: str, host: str, seq: int, uptime_s: float) -> bytes:
    now = datetime.now(UTC).isoformat()
    return json.dumps({
        "id": str(uuid7()), "seq": seq, "time": now, "agent_id": agent_id, "host": host,
        "kind": "agent.heartbeat", "severity": "info", "summary": "心跳",
        "evidence": {"agent_version": "fleet", "uptime_s": uptime_s,
                     "interval_s": SHIPPED.heartbeat_interval_s, "spool_depth": 0,
                     "spool_bytes": 0, "events_dropped": 0, "rss_bytes": 56_000_000,
                     "cpu_percent": 0.2,
                     "detectors": {"outreach": {"state": "ok"}, "accounts": {"state": "ok"},
                                   "documents": {"state": "ok"}}},
    }, ensure_ascii=False).encode()


# -- one generator process ------------------------------------------------------------------------

@dataclass
class Tally:
    ingest: list[float] = field(default_factory=list)
    burst: list[float] = field(default_factory=list)
    #: Latency of policy fetches the collector answered at once (not held: a 200, or beyond
    #: ``policy_held_max``).
    poll: list[float] = field(default_factory=list)
    #: Fetches held (answered with ``Preference-Applied`` after a wait) and answered at once.
    held: int = 0
    not_held: int = 0
    events: int = 0
    #: Ingest batches acknowledged (200).
    batches: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    lag_s: float = 0.0
    #: 503 answers (the collector's back-pressure: the agent waits Retry-After and resends).
    deferred: int = 0
    #: Seconds from the outage's end until the last outage agent's backlog was acknowledged.
    drained_after_s: float = 0.0
    #: Events still spooled when the run ended (none, if the fleet kept up).
    left: int = 0
    #: This generator process's own CPU (user + system seconds) over the run.
    cpu_s: float = 0.0
    #: Most connections (policy and ingest) this generator's agents held open at once.
    open_peak: int = 0
    #: Connections opened (each a TCP and TLS handshake): ingest, policy.
    ingest_connects: int = 0
    policy_connects: int = 0

    def fail(self, why: str) -> None:
        self.failed[why] = self.failed.get(why, 0) + 1


@dataclass
class Plan:
    url: str
    ca: str | None
    seconds: float
    events_per_min: float
    outage_from_s: float
    outage_s: float
    backlog: int
    start_at: float


class SimulatedAgent:
    def __init__(self, agent_id: str, secret: str, index: int, outage: bool) -> None:
        self.agent_id = agent_id
        self.auth = f"Bearer {agent_id}:{secret}"
        self.host = f"fleet-{index:05d}"
        self.outage = outage
        self.seq = 0
        self.spool: list[bytes] = []
        self.etag: str | None = None
        self.wake = asyncio.Event()
        self.policy_connection: Connection
        self.ingest_connection: Connection

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class HttpError(Exception):
    pass


class OpenCount:
    """Connections a generator's agents hold open now, and the most at once."""

    def __init__(self, tally: Tally) -> None:
        self.tally, self.now = tally, 0

    def opened(self) -> None:
        self.now += 1
        self.tally.open_peak = max(self.tally.open_peak, self.now)

    def closed(self) -> None:
        self.now -= 1


class Connection:
    """One HTTP/1.1 connection over asyncio streams: what one agent's client keeps open.

    httpx costs tens of kilobytes and a pool per agent; twenty thousand agents each
    holding their own connection need something closer to the socket. Each agent still
    has its own connections, credentials and TLS sessions, as the real one does: an idle
    connection is kept ``keepalive_expiry_s``, and a request that fails on a reused one
    (the collector closed it) is sent once more at once on a new one.
    """

    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext | None,
                 count: OpenCount) -> None:
        self.host, self.port, self.ssl = host, port, ssl_context
        self.count = count
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.idle_since = 0.0
        #: Connections this one opened in all (each a TCP and TLS handshake).
        self.connects = 0

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes = b"", limit_s: float = 90) -> tuple[int, dict[str, str]]:
        if (self.writer is not None
                and time.monotonic() - self.idle_since > SHIPPED.keepalive_expiry_s):
            self.close()
        if self.writer is None:
            return await self._request(method, path, headers, body, limit_s)
        try:
            return await self._request(method, path, headers, body, limit_s)
        except HttpError as exc:
            if str(exc) == "TimeoutError":
                raise
        return await self._request(method, path, headers, body, limit_s)

    async def _request(self, method: str, path: str, headers: dict[str, str],
                       body: bytes, limit_s: float) -> tuple[int, dict[str, str]]:
        try:
            async with asyncio.timeout(limit_s):
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(
                        self.host, self.port, ssl=self.ssl,
                        server_hostname="localhost" if self.ssl else None)
                    self.connects += 1
                    self.count.opened()
                assert self.reader is not None
                head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n" + "".join(
                    f"{k}: {v}\r\n" for k, v in headers.items())
                self.writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode()
                                  + body)
                status_line = await self.reader.readline()
                if not status_line:
                    raise HttpError("closed")
                status = int(status_line.split()[1])
                answer: dict[str, str] = {}
                while (line := await self.reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    answer[name.strip().lower()] = value.strip()
                await self.reader.readexactly(int(answer.get("content-length", "0")))
        except (OSError, HttpError, asyncio.IncompleteReadError, TimeoutError, ValueError,
                IndexError) as exc:
            self.close()
            raise HttpError(type(exc).__name__) from exc
        if answer.get("connection", "").lower() == "close" or headers.get("Connection") == "close":
            self.close()
        self.idle_since = time.monotonic()
        return status, answer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
            self.count.closed()
        self.reader = self.writer = None


async def generator(plan: Plan, agents: list[tuple[str, str, int, bool]]) -> Tally:
    tally = Tally()
    context: ssl.SSLContext | None = None
    if plan.ca:
        context = ssl.create_default_context(cafile=plan.ca)
    address = plan.url.split("://", 1)[1]
    host, port = address.rsplit(":", 1)[0], int(address.rsplit(":", 1)[1].rstrip("/"))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(max(0.0, plan.start_at - time.time()))
    start = time.monotonic()
    end = start + plan.seconds
    outage_start = start + plan.outage_from_s
    outage_end = outage_start + plan.outage_s
    count = OpenCount(tally)

    async def heartbeats(agent: SimulatedAgent, offset: float) -> None:
        at = start + offset
        while at < end:
            tally.lag_s = max(tally.lag_s, time.monotonic() - at)
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            agent.spool.append(heartbeat_event(agent.agent_id, agent.host, agent.next_seq(),
                                               time.monotonic() - start + 3600))
            agent.wake.set()
            at += SHIPPED.heartbeat_interval_s

    async def detections(agent: SimulatedAgent) -> None:
        rate_s = plan.events_per_min / 60
        if rate_s <= 0:
            return
        at = start + random.expovariate(rate_s)
        while at < end:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            agent.spool.append(detector_event(agent.agent_id, agent.host, agent.next_seq()))
            agent.wake.set()
            at += random.expovariate(rate_s)

    async def policy(agent: SimulatedAgent, offset: float) -> None:
        """The agent's policy client until the run ends (a fetch held then is left open)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, end - time.monotonic())):
                await policy_client(agent, offset)

    async def policy_client(agent: SimulatedAgent, offset: float) -> None:
        """Held fetches back to back while the collector holds them, else a timed poll every
        ``policy_poll_s`` (agent/policy/client.py), on its kept connection."""
        connection = agent.policy_connection
        await asyncio.sleep(offset)
        while time.monotonic() < end:
            if agent.outage and outage_start <= time.monotonic() < outage_end:
                connection.close()
                await asyncio.sleep(outage_end - time.monotonic())
                continue
            headers = {"Authorization": agent.auth,
                       "Prefer": f"wait={SHIPPED.policy_wait_s:g}"}
            if agent.etag:
                headers["If-None-Match"] = agent.etag
            began = time.perf_counter()
            try:
                status, answer = await connection.request(
                    "GET", "/api/v1/policy", headers,
                    limit_s=SHIPPED.policy_wait_s + 30)
            except HttpError as exc:
                if time.monotonic() < end:
                    tally.fail(f"policy {exc}")
                await asyncio.sleep(SHIPPED.backoff_initial_s)
                continue
            took = time.perf_counter() - began
            if status not in (200, 304):
                tally.fail(f"policy {status}")
            agent.etag = answer.get("etag", agent.etag)
            # Held: the collector waited and found nothing newer (no publish during a run).
            # A first fetch's 200 is never held, however slow a starved collector was.
            held = status == 304 and "wait=" in answer.get("preference-applied", "")
            if held:
                tally.held += 1
                continue
            tally.not_held += 1
            tally.poll.append(took)
            if status == 200:
                continue  # a new bundle: the next fetch names it and is held
            # Not held: the next timed poll, on the connection if it is still kept.
            await asyncio.sleep(SHIPPED.policy_poll_s)

    async def outage(agent: SimulatedAgent) -> None:
        """The network goes: what a busy workstation spools meanwhile is waiting at its end."""
        await asyncio.sleep(max(0.0, outage_start - time.monotonic()))
        agent.spool += [detector_event(agent.agent_id, agent.host, agent.next_seq())
                        for _ in range(plan.backlog)]
        agent.wake.set()

    async def shipper(agent: SimulatedAgent) -> None:
        after_outage = False
        connection = agent.ingest_connection
        while time.monotonic() < end:
            if not agent.spool:
                agent.wake.clear()
                try:
                    async with asyncio.timeout(max(0.0, end - time.monotonic())):
                        await agent.wake.wait()
                except TimeoutError:
                    return
                await asyncio.sleep(SHIPPED.batch_max_age_s)  # let the batch fill
                if not agent.spool:  # woken with nothing to send (an outage of no backlog)
                    continue
            now = time.monotonic()
            if agent.outage and outage_start <= now < outage_end:
                after_outage = True
                connection.close()  # the network went: its connections with it
                await asyncio.sleep(outage_end - now)
                await asyncio.sleep(random.random() * SHIPPED.drain_start_jitter_s)
                continue
            rows = agent.spool[:SHIPPED.batch_max_events]
            burst = after_outage
            body = gzip.compress(
                b'{"agent_id":"' + agent.agent_id.encode() + b'","sent_at":"'
                + datetime.now(UTC).isoformat().encode() + b'","events":['
                + b",".join(rows) + b"]}", 6)
            began = time.perf_counter()
            try:
                # On the agent's kept ingest connection (a new one if it has gone).
                status, answer = await connection.request("POST", "/api/v1/events", {
                    "Authorization": agent.auth, "Content-Type": "application/json",
                    "Content-Encoding": "gzip"}, body, limit_s=60)
            except HttpError as exc:
                tally.fail(f"ingest {exc}")
                await asyncio.sleep(SHIPPED.backoff_initial_s)
                continue
            (tally.burst if burst else tally.ingest).append(time.perf_counter() - began)
            if status == 503:
                tally.deferred += 1
                retry_after = answer.get("retry-after", "")
                await asyncio.sleep(float(retry_after) if retry_after.isdigit()
                                    else SHIPPED.backoff_initial_s)
                continue
            if status != 200:
                tally.fail(f"ingest {status}")
                await asyncio.sleep(SHIPPED.backoff_initial_s)
                continue
            tally.events += len(rows)
            tally.batches += 1
            del agent.spool[:len(rows)]
            if not agent.spool:
                if after_outage:
                    tally.drained_after_s = max(tally.drained_after_s,
                                                time.monotonic() - outage_end)
                after_outage = False
            elif burst:
                # The drain-rate bucket: batch_max_events at drain_rate_eps.
                await asyncio.sleep(len(rows) / SHIPPED.drain_rate_eps)

    simulated = [SimulatedAgent(a, s, i, o) for a, s, i, o in agents]
    tasks = []
    for agent in simulated:
        agent.policy_connection = Connection(host, port, context, count)
        agent.ingest_connection = Connection(host, port, context, count)
        tasks += [heartbeats(agent, random.uniform(0, SHIPPED.heartbeat_interval_s)),
                  policy(agent, random.uniform(0, SHIPPED.policy_poll_s)),
                  detections(agent), shipper(agent)]
        if agent.outage:
            tasks.append(outage(agent))
    await asyncio.gather(*tasks)
    tally.left = sum(len(agent.spool) for agent in simulated)
    tally.ingest_connects = sum(agent.ingest_connection.connects for agent in simulated)
    tally.policy_connects = sum(agent.policy_connection.connects for agent in simulated)
    after = resource.getrusage(resource.RUSAGE_SELF)
    tally.cpu_s = (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
    return tally


def generator_process(plan: Plan, agents: list[tuple[str, str, int, bool]], queue: Any) -> None:
    _raise_open_files()
    queue.put(asyncio.run(generator(plan, agents)))


#: Open files the bench asks for, as root (the collector's systemd unit sets LimitNOFILE=65536).
WANTED_OPEN_FILES = 65536


def _raise_open_files() -> None:
    """Every simulated agent keeps two connections open: the soft limit goes to the hard one,
    and as root the hard one first goes up to ``WANTED_OPEN_FILES`` (at most fs.nr_open).
    The collectors inherit the raised hard limit: ``serve`` raises its soft one to what
    ``policy_held_max`` needs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(OSError, ValueError):
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
        if hard != resource.RLIM_INFINITY and hard < WANTED_OPEN_FILES:
            hard = min(WANTED_OPEN_FILES, nr_open)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))  # needs root
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- one run ---------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def run_fleet(collectors: list[Collector], made: list[tuple[str, str]], args: argparse.Namespace,
              label: str) -> bool:
    ca = str(collectors[0].ca_file) if collectors[0].tls else None
    outage_every = 10  # a tenth of the fleet
    agents = [(agent_id, secret, i, i % outage_every == 0)
              for i, (agent_id, secret) in enumerate(made)]
    plan = Plan(collectors[0].url, ca, args.seconds, args.events_per_min,
                args.seconds / 3, args.outage_s, args.backlog, time.time() + 5)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    processes = [ctx.Process(target=generator_process, args=(plan, agents[w::args.workers], queue))
                 for w in range(args.workers)]
    for process in processes:
        process.start()
    servers = [psutil.Process(c.process.pid) for c in collectors if c.process is not None]
    time.sleep(max(0.0, plan.start_at - time.time()))
    before = [s.cpu_times() for s in servers]
    wall = time.monotonic()
    peaks = {"rss": 0, "fds": 0}
    done = threading.Event()

    def sample() -> None:
        # The collectors' memory and open files at their highest: what held fetches cost.
        while not done.wait(2.0):
            with contextlib.suppress(psutil.Error):
                peaks["rss"] = max(peaks["rss"], sum(s.memory_info().rss for s in servers))
                peaks["fds"] = max(peaks["fds"], sum(s.num_fds() for s in servers))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tallies: list[Tally] = [queue.get(timeout=args.seconds + 600) for _ in processes]
    elapsed = time.monotonic() - wall
    after = [s.cpu_times() for s in servers]
    done.set()
    sampler.join()
    for process in processes:
        process.join()
    stored = collectors[0].query(
        "SELECT COUNT(*) FROM events WHERE host LIKE 'fleet-%' AND seq IS NOT NULL")[0][0]
    cpu = sum(a.user + a.system - b.user - b.system for a, b in zip(after, before, strict=True))
    ingest = [x for t in tallies for x in t.ingest]
    burst = [x for t in tallies for x in t.burst]
    poll = [x for t in tallies for x in t.poll]
    failed: dict[str, int] = {}
    for tally in tallies:
        for why, count in tally.failed.items():
            failed[why] = failed.get(why, 0) + count
    lag = max(t.lag_s for t in tallies)
    deferred = sum(t.deferred for t in tallies)
    left = sum(t.left for t in tallies)
    drained = max(t.drained_after_s for t in tallies)
    # The ingest latencies include the 503 answers: deferred batches are in them already.
    requests = len(ingest) + len(burst) + sum(t.held + t.not_held for t in tallies)
    p99 = percentile(ingest, 0.99)
    # Steady-state ingest within the bound, nothing failed, the generators on schedule, and
    # the backlog acknowledged before the run ended (at most the last batch window left).
    sustained = (not failed and p99 < args.p99_ms and lag < 2.0
                 and left <= len(made) * max(1.0, args.events_per_min))
    print(
        f"{label:10s} {len(made):6d} agents  {sum(t.events for t in tallies) / elapsed:6.0f} "
        f"events/s {requests / elapsed:6.1f} requests/s | ingest p50 "
        f"{percentile(ingest, 0.5):6.1f} ms p99 {p99:7.1f} ms | backlog burst p50 "
        f"{percentile(burst, 0.5):6.1f} ms p99 {percentile(burst, 0.99):7.1f} ms, drained "
        f"{drained:5.1f} s after the outage, {deferred} deferred (503) | policy p50 "
        f"{percentile(poll, 0.5):5.1f} ms p99 {percentile(poll, 0.99):7.1f} ms | collector CPU "
        f"{cpu / elapsed:4.2f} cores ({len(servers)} proc), "
        f"{cpu / max(1, requests) * 1000:5.2f} ms per request, "
        f"{cpu / max(1, sum(t.batches for t in tallies)) * 1000:5.2f} ms per acknowledged "
        f"batch, "
        f"{cpu / elapsed * 60 / len(made) * 1000:5.2f} ms per agent-minute, peak RSS "
        f"{peaks['rss'] / 2**20:5.0f} MiB, peak open files {peaks['fds']} | policy fetches "
        f"held {sum(t.held for t in tallies)}, answered at once "
        f"{sum(t.not_held for t in tallies)}, agents' open connections at most "
        f"{sum(t.open_peak for t in tallies)}, connections opened: ingest "
        f"{sum(t.ingest_connects for t in tallies)}, policy "
        f"{sum(t.policy_connects for t in tallies)} | generators' CPU "
        f"{sum(t.cpu_s for t in tallies) / elapsed:4.2f} cores | generator lag {lag:4.1f} s, "
        f"stored {stored}/{sum(t.events for t in tallies)}, left spooled {left}, "
        f"failed {sum(failed.values())} {failed or ''} | "
        f"{'SUSTAINED' if sustained else 'not sustained'}",
        flush=True,
    )
    return sustained


def start_collectors(home: Path, database_url: str, count: int,
                     args: argparse.Namespace) -> list[Collector]:
    env = {"COURTGUARD_COLLECTOR_REUSE_PORT": "true"} if count > 1 else {}
    first = Collector(home=home / "c0", database_url=database_url, tls=not args.plain_http,
                      extra_env=dict(env))
    first.home.mkdir(parents=True)
    first.init()
    collectors = [first]
    for index in range(1, count):
        other = Collector(home=home / f"c{index}", database_url=database_url,
                          tls=not args.plain_http, port=first.port, extra_env=dict(env),
                          admin_key=first.admin_key)
        shutil.copytree(first.data_dir, other.data_dir)
        collectors.append(other)
    first.cli("policy", "publish", str(POLICIES), "--note", "fleet", "--author", "bench")
    return collectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="1000,2000",
                        help="fleet sizes to try, comma-separated, smallest first")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--setups", default="sqlite,postgres2",
                        help="sqlite (one collector), postgres1, postgres2 (two on one database)")
    parser.add_argument("--events-per-min", type=float, default=1.0,
                        help="detector events per agent per minute (besides heartbeats)")
    parser.add_argument("--outage-s", type=float, default=30)
    parser.add_argument("--backlog", type=int, default=300,
                        help="events each outage agent has waiting when the network returns")
    parser.add_argument("--p99-ms", type=float, default=500)
    parser.add_argument("--workers", type=int, default=2, help="generator processes")
    parser.add_argument("--plain-http", action="store_true")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    # A stop (SIGTERM) unwinds like an error, so the collectors this run started stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))
    sizes = [int(n) for n in args.agents.split(",")]
    _raise_open_files()
    print(f"pacing: heartbeat {SHIPPED.heartbeat_interval_s:.0f} s, policy poll "
          f"{SHIPPED.policy_poll_s:.0f} s, {args.events_per_min} detector events/min per agent, "
          f"batch age {SHIPPED.batch_max_age_s} s, keep-alive {SHIPPED.keepalive_expiry_s:.0f} s, "
          f"open files {resource.getrlimit(resource.RLIMIT_NOFILE)[1]}; "
          f"a tenth offline {args.outage_s:.0f} s from "
          f"{args.seconds / 3:.0f} s with {args.backlog} events waiting; "
          f"{'HTTP' if args.plain_http else 'HTTPS'}, {args.workers} generator processes, "
          f"{args.seconds:.0f} s per run", flush=True)
    for setup in args.setups.split(","):
        count = 1 if setup in ("sqlite", "postgres1") else 2
        for size in sizes:
            with tempfile.TemporaryDirectory(prefix="cg-fleet-") as tmp, ExitStack() as stack:
                home = Path(tmp)
                if setup == "sqlite":
                    url = f"sqlite:///{home / 'collector.db'}"
                else:
                    url = stack.enter_context(postgres_database(args.pg_url))
                collectors = start_collectors(home, url, count, args)
                made = add_agents(collectors[0], size)
                for collector in collectors:
                    stack.callback(collector.stop)
                    collector.start()
                run_fleet(collectors, made, args, setup)
    print("load average:", " ".join(f"{x:.2f}" for x in psutil.getloadavg()), flush=True)


if __name__ == "__main__":
    main()
