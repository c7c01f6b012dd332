"""Console list speed on a store grown through ingest, SQLite and PostgreSQL.

A real collector (``serve``, plain HTTP on loopback) takes ``--events`` events
through ``POST /api/v1/events`` in gzip batches of 500 from ``--agents``
enrolled agents over ``--concurrency`` connections at once, the way agents fill
a store: times rise over 30 days, hosts are the agents', accounts, kinds, rule
ids and severities vary, and ingest groups them into alerts as it does in
production. Then the planner statistics are refreshed as ``serve`` does on its
schedule (``collector.store_statistics``; on PostgreSQL ``VACUUM ANALYZE``, what
autovacuum does) and what the console's pages ask the store for is timed in-process
(``collector.console.data``: the list query plus the capped counts, what the
page and the API call), with every single filter, free text, the sort orders
and the alert groups; plus two whole pages through the ASGI app.

Each figure is printed beside a floor measured in the same run: a trivial
indexed ``SELECT`` of one page (51 rows) of events by time. Prints medians and
p90 per query; never fails on a figure.

    .venv/bin/python bench/console.py [--events 1000000] [--agents 200] [--concurrency 4]
        [--runs 11] [--backends sqlite,postgres] [--pg-url URL] [--keep]
    .venv/bin/python bench/console.py --store URL [--runs 11]

``--keep`` leaves each grown store in place and prints its URL; ``--store`` times
a store grown earlier (migrated to the head revision first), without ingest, so
a change to the queries or indexes is measured on the same million events.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psutil
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool
from starlette.datastructures import QueryParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.events import uuid7
from collector.console import data, users
from collector.settings import CollectorSettings
from collector.store.database import Database
from collector.store.migrate import upgrade
from collector.store_statistics import refresh
from tests.e2e.harness import Collector, agent_headers, batch_body
from tests.postgres import DEFAULT_PG_URL, postgres_database

SPAN = timedelta(days=30)
BATCH = 500
PASSWORD = "bench password 123"  # noqa: S105 (a throw-away store)
SEVERITIES = ("info", "low", "medium", "high", "critical")
#: (kind, rule ids, severity weights info..critical, share of all events). The kinds are not
#: registered ones, so their evidence is free-form; their families are the real ones.
KINDS: list[tuple[str, list[str], tuple[int, ...], int]] = [
    ("agent.bench_status", [""], (1, 0, 0, 0, 0), 40),
    ("account.bench_session", [""], (1, 0, 0, 0, 0), 10),
    ("outreach.bench_flow", [f"outreach.bench-rule-{i}" for i in range(8)], (0, 0, 5, 4, 1), 15),
    ("outreach.bench_interface", ["outreach.bench-usb-modem"], (0, 0, 0, 1, 0), 3),
    ("account.bench_login", [f"accounts.bench-login-{i}" for i in range(10)], (0, 3, 2, 1, 0),
     17),
    ("account.bench_privilege", [f"accounts.bench-privilege-{i}" for i in range(4)],
     (0, 0, 1, 1, 0), 5),
    ("document.bench_block", [f"documents.bench-rule-{i}" for i in range(12)], (0, 0, 0, 3, 1),
     5),
    ("document.bench_review", [f"documents.bench-rule-{i}" for i in range(12)], (0, 1, 0, 0, 0),
     5),
]
SUMMARIES = {
    "agent": "终端 {host} 状态正常",
    "outreach": "终端 {host} 出现违规外联迹象（{rule}）",
    "account": "外包账号 {account} 在 {host} 上的登录记录",
    "document": "待发布文书 判决书-{n}.docx 含未脱敏信息（{rule}）",
}


def load_average() -> str:
    return ", ".join(f"{x:.1f}" for x in psutil.getloadavg()) + f" on {psutil.cpu_count()} CPUs"


def make_batch(rng: random.Random, agent: dict[str, Any], host: str, first_seq: int,
               first_n: int, total: int, start: datetime) -> list[dict[str, Any]]:
    """One agent's batch; event n of ``total`` lies at n/total of the span after ``start``."""
    kinds = [k for k in KINDS for _ in range(k[3])]
    batch = []
    for i in range(BATCH):
        n = first_n + i
        kind, rules, weights, _share = rng.choice(kinds)
        rule = rng.choice(rules) or None
        severity = rng.choices(SEVERITIES, weights)[0]
        family = kind.split(".")[0]
        account = f"wb_{rng.randrange(200):03d}" if family == "account" else None
        evidence: dict[str, Any] = {"account": account} if account else {"n": n}
        when = start + SPAN * (n / total) + timedelta(seconds=rng.random() * 60)
        batch.append({
            "id": str(uuid7()), "seq": first_seq + i, "time": when.isoformat(),
            "agent_id": agent["agent_id"], "host": host, "kind": kind, "severity": severity,
            "rule_id": rule, "summary": SUMMARIES[family].format(
                host=host, rule=rule, account=account, n=n % 5000),
            "evidence": evidence,
        })
    return batch


def ingest(collector: Collector, total: int, agents: int, concurrency: int) -> float:
    """POST ``total`` events as ``agents`` agents over ``concurrency`` connections; the seconds.

    Connection ``w`` sends batch numbers ``w, w + concurrency, ...`` as the agents whose index
    is ``w`` modulo ``concurrency``, so each agent's batches still arrive in sequence order and
    the store's content does not depend on how the connections interleave.
    """
    token = collector.create_token("--uses", str(agents))
    start = datetime.now(UTC) - SPAN - timedelta(minutes=5)
    with collector.http(timeout=300) as client:
        enrolled = []
        for a in range(agents):
            response = client.post("/api/v1/enroll", json={
                "token": token, "hostname": f"ws-{a:04d}", "agent_version": "bench"})
            response.raise_for_status()
            enrolled.append(response.json())
    concurrency = max(1, min(concurrency, agents))
    seqs = [1] * agents
    batches = total // BATCH
    sent = [0]
    lock = threading.Lock()
    started = time.perf_counter()

    def connection(worker: int) -> None:
        rng = random.Random(7 + worker)
        own = [a for a in range(agents) if a % concurrency == worker]
        with collector.http(timeout=300) as client:
            for number in range(worker, batches, concurrency):
                index = rng.choice(own)
                agent = enrolled[index]
                batch = make_batch(rng, agent, f"ws-{index:04d}", seqs[index], number * BATCH,
                                   total, start)
                seqs[index] += BATCH
                response = client.post("/api/v1/events", headers=agent_headers(agent),
                                       content=batch_body(agent["agent_id"], batch))
                response.raise_for_status()
                with lock:
                    sent[0] += BATCH
                    if sent[0] % 100_000 == 0:
                        rate = sent[0] / (time.perf_counter() - started)
                        print(f"  {sent[0]:,} events, {rate:,.0f}/s (load {load_average()})",
                              flush=True)

    with ThreadPoolExecutor(concurrency) as pool:
        for done in [pool.submit(connection, w) for w in range(concurrency)]:
            done.result()
    return time.perf_counter() - started


def timed(call: Callable[[], Any], runs: int) -> tuple[float, float]:
    call()  # warm caches and the plan
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]


def queries(now: datetime) -> dict[str, tuple[str, str]]:
    """label → (list, query string)."""
    day_ago = (now - timedelta(days=1)).isoformat()
    return {
        "events, first page, no filter": ("events", ""),
        "events, host=ws-0042": ("events", "host=ws-0042"),
        "events, account=wb_007": ("events", "account=wb_007"),
        "events, kind=outreach.bench_flow": ("events", "kind=outreach.bench_flow"),
        "events, rule_id=documents.bench-rule-3": ("events", "rule_id=documents.bench-rule-3"),
        "events, min_severity=critical": ("events", "min_severity=critical"),
        "events, severity=low": ("events", "severity=low"),
        "events, last day": ("events", urlencode({"since": day_ago})),
        "events, status=new (alert join)": ("events", "status=new"),
        "events, q=ws-0042 (selective text)": ("events", "q=ws-0042"),
        "events, q=判决书-123 (rare text)": ("events", urlencode({"q": "判决书-123"})),
        "events, q=违规外联 (common text)": ("events", urlencode({"q": "违规外联"})),
        "events, sorted by host": ("events", "sort=host"),
        "events, sorted by summary, descending": ("events", "sort=-summary"),
        "events, sorted by severity, host=ws-0042": ("events", "sort=-severity&host=ws-0042"),
        "alerts, open (default page)": ("alerts", "status=new,acknowledged,in_progress"),
        "alerts, all": ("alerts", ""),
        "alerts, host=ws-0042": ("alerts", "host=ws-0042"),
        "alerts, account=wb_007": ("alerts", "account=wb_007"),
        "alerts, kind=outreach.bench_flow": ("alerts", "kind=outreach.bench_flow"),
        "alerts, rule_id=documents.bench-rule-3": ("alerts", "rule_id=documents.bench-rule-3"),
        "alerts, min_severity=high": ("alerts", "min_severity=high"),
        "alerts, last day": ("alerts", urlencode({"since": day_ago})),
        "alerts, q=ws-0042": ("alerts", "q=ws-0042"),
        "alerts, sorted by count": ("alerts", "sort=-count"),
        "alerts, grouped by host": ("alerts", "group=host"),
        "alerts, grouped by rule": ("alerts", "group=rule"),
    }


def store_size(db: Database) -> str:
    with db.read() as conn:
        events = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
        alerts = conn.execute(text("SELECT count(*) FROM alerts")).scalar_one()
        links = conn.execute(text("SELECT count(*) FROM alert_events")).scalar_one()
        if db.is_sqlite:
            pages = conn.execute(text("PRAGMA page_count")).scalar_one()
            size = pages * conn.execute(text("PRAGMA page_size")).scalar_one()
        else:
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    return (f"{events:,} events, {alerts:,} alerts, {links:,} alert links, "
            f"{size / 2**20:,.0f} MiB")


def grow(name: str, url: str, events: int, agents: int, concurrency: int) -> Path:
    """A store at ``url`` grown through ingest; the collector's home."""
    home = Path(tempfile.mkdtemp(prefix="cg-bench-console-"))
    collector = Collector(home=home, database_url=url, tls=False)
    # serve refreshes planner statistics on its own schedule; here once, after ingest, below
    collector.extra_env["COURTGUARD_COLLECTOR_STATISTICS_INTERVAL_S"] = str(10 * 24 * 3600)
    collector.init()
    collector.start()
    try:
        seconds = ingest(collector, events, agents, concurrency)
    finally:
        collector.stop()
    print(f"[{name}] ingested {events:,} events through POST /api/v1/events in {seconds:.0f} s "
          f"({events / seconds:,.0f}/s; load {load_average()})", flush=True)
    return home


def bench_backend(name: str, url: str, home: Path, runs: int) -> None:
    settings = CollectorSettings(database_url=url, tls=False, data_dir=home)
    db = Database.from_settings(settings)
    started = time.perf_counter()
    upgrade(db)
    print(f"[{name}] migrations to head took {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    if db.is_sqlite:
        analyzed = [c.table for c in refresh(db)]
    else:  # autovacuum vacuums and analyzes in production; it is off on the test servers
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        analyzed = ["every table (VACUUM ANALYZE)"]
    print(f"[{name}] statistics refresh ({', '.join(analyzed) or 'nothing'}) "
          f"took {time.perf_counter() - started:.1f} s", flush=True)
    print(f"[{name}] store: {store_size(db)}", flush=True)

    floor_sql = text("SELECT id, time FROM events ORDER BY time DESC, id DESC LIMIT 51")

    def floor() -> Any:
        with db.read() as conn:
            return conn.execute(floor_sql).all()

    floor_ms, floor_p90 = timed(floor, runs)
    print(f"[{name}] {'floor: indexed SELECT of 51 events by time':<52} median {floor_ms:7.2f} "
          f"ms  p90 {floor_p90:7.2f} ms", flush=True)
    now = datetime.now(UTC)
    for label, (kind, query) in queries(now).items():
        params = QueryParams(query)
        lister = data.events_listing if kind == "events" else data.alerts_listing

        def call(params: QueryParams = params, lister: Any = lister) -> Any:
            return lister(db, params, UTC)

        median, p90 = timed(call, runs)
        listing = call()
        shown = len(listing.get(kind, [])) if not listing.get("groups") else len(
            listing["groups"])
        print(f"[{name}] {label:<52} median {median:7.1f} ms  p90 {p90:7.1f} ms  "
              f"x{median / floor_ms:6.1f} floor  ({shown} rows) (load {load_average()})",
              flush=True)
    first = data.events_listing(db, QueryParams(""), UTC)
    params = QueryParams(f"cursor={first['next_cursor']}")
    median, p90 = timed(lambda: data.events_listing(db, params, UTC, False), runs)
    print(f"[{name}] {'events, second page (cursor), no counts':<52} median {median:7.1f} ms  "
          f"p90 {p90:7.1f} ms  x{median / floor_ms:6.1f} floor", flush=True)
    pages(name, settings, db, runs, floor_ms)
    db.dispose()


def pages(name: str, settings: CollectorSettings, db: Database, runs: int,
          floor_ms: float) -> None:
    """Whole pages through the ASGI app: session, query, template."""
    from starlette.testclient import TestClient

    from collector.app import create_app

    login_name = f"bench{uuid7().hex[-8:]}"
    users.create_user(db, login_name, "reviewer", PASSWORD, datetime.now(UTC))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with TestClient(create_app(settings, db)) as client:
            login = client.get("/console/login")
            token = re.search(r'name="csrf" value="([^"]+)"', login.text)
            assert token is not None
            client.post("/console/login", data={
                "username": login_name, "password": PASSWORD, "csrf": token.group(1)})
            for path in ("/console/alerts", "/console/events?host=ws-0042",
                         "/console/alerts?group=host&all=1"):
                def get(path: str = path) -> None:
                    response = client.get(path)
                    assert response.status_code == 200, response.status_code

                median, p90 = timed(get, runs)
                print(f"[{name}] page {path:<47} median {median:7.1f} ms  p90 {p90:7.1f} ms  "
                      f"x{median / floor_ms:6.1f} floor", flush=True)



def store_urls(stack: ExitStack, backends: str, pg_url: str) -> Iterator[tuple[str, str]]:
    """``(backend, url)`` of a fresh store per name in ``backends`` (sqlite, postgres)."""
    for backend in backends.split(","):
        if backend == "sqlite":
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            yield backend, f"sqlite:///{folder / 'bench.db'}"
        else:
            yield backend, stack.enter_context(postgres_database(pg_url))


def kept_postgres_database(server: str) -> str:
    """A new database on ``server`` that outlives the run (drop it by hand)."""
    name = f"cg_bench_{uuid7().hex[-12:]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4,
                        help="connections posting batches at once")
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--keep", action="store_true", help="keep each grown store")
    parser.add_argument("--store", help="time this store, grown earlier, without ingest")
    args = parser.parse_args()
    args.events -= args.events % BATCH
    print(f"load average before: {load_average()}; pid {os.getpid()}", flush=True)
    if args.store:
        name = "sqlite" if args.store.startswith("sqlite") else "postgres"
        bench_backend(name, args.store, Path(tempfile.mkdtemp(prefix="cg-bench-console-")),
                      args.runs)
        print(f"load average after: {load_average()}")
        return
    with ExitStack() as stack:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                folder = (tempfile.mkdtemp(prefix="cg-bench-store-") if args.keep else
                          stack.enter_context(tempfile.TemporaryDirectory()))
                url = f"sqlite:///{Path(folder) / 'bench.db'}"
            elif args.keep:
                url = kept_postgres_database(args.pg_url)
            else:
                url = stack.enter_context(postgres_database(args.pg_url))
            home = grow(backend, url, args.events, args.agents, args.concurrency)
            if args.keep:
                print(f"[{backend}] kept store: --store {url}", flush=True)
            bench_backend(backend, url, home, args.runs)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
