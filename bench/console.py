"""Console list speed on a large store: 1,000,000 events and 50,000 alerts, SQLite and PostgreSQL.

Fills a fresh store by bulk insert (SQLite executemany, PostgreSQL COPY):
events over 30 days from 500 agents (heartbeats, outreach, account, document
and agent kinds; about 45 % of them of severity low or above, each linked to
one of the alerts), then times what the console's pages ask the store for,
in-process (``collector.console.data``, the same call the page and the API
make; "server time" without HTTP and template), and the full page through
the ASGI app (HTTP handling, session check, template) for the two lists.
Prints medians (and p90) per query and backend; never fails on a figure.

    .venv/bin/python bench/console.py [--events 1000000] [--alerts 50000] [--runs 21]
        [--backends sqlite,postgres] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import psutil
from starlette.datastructures import QueryParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.console import data, users
from collector.settings import CollectorSettings
from collector.store import migrate
from collector.store.database import Database
from collector.store.tables import sqlite_utc_text
from tests.postgres import DEFAULT_PG_URL, postgres_database

NOW = datetime.now(UTC).replace(microsecond=0)
SPAN = timedelta(days=30)
AGENTS = 500
PASSWORD = "bench password 123"  # noqa: S105 (a throw-away store)
#: (kind, rule ids, severities with weights, share of all events)
KINDS: list[tuple[str, list[str], list[tuple[int, int]], float]] = [
    ("agent.heartbeat", [""], [(0, 1)], 0.50),
    ("account.session", [""], [(0, 1)], 0.05),
    ("outreach.flow", [f"outreach.rule_{i}" for i in range(8)], [(2, 5), (3, 4), (4, 1)], 0.15),
    ("outreach.interface", ["outreach.new_interface", "outreach.usb_modem"], [(3, 1)], 0.03),
    ("account.login", [f"account.login_{i}" for i in range(10)], [(1, 3), (2, 2), (3, 1)], 0.14),
    ("account.privilege", [f"account.privilege_{i}" for i in range(4)], [(2, 1), (3, 1)], 0.05),
    ("document.block", [f"document.rule_{i}" for i in range(12)], [(3, 3), (4, 1)], 0.05),
    ("document.review", [f"document.rule_{i}" for i in range(12)], [(1, 1)], 0.02),
    ("agent.detector_degraded", [""], [(2, 1)], 0.01),
]
EVENT_COLUMNS = (
    "id",
    "agent_id",
    "seq",
    "time",
    "received_at",
    "host",
    "kind",
    "severity",
    "rule_id",
    "policy_version",
    "summary",
    "account",
    "evidence",
)
ALERT_COLUMNS = (
    "fingerprint",
    "rule_id",
    "kind",
    "severity",
    "host",
    "agent_id",
    "account",
    "title",
    "status",
    "assignee",
    "resolution",
    "resolution_comment",
    "count",
    "first_seen",
    "last_seen",
    "last_event_id",
    "created_at",
    "updated_at",
    "acknowledged_at",
    "closed_at",
    "reopened_count",
)


def weighted(rng: random.Random, pairs: list[tuple[int, int]]) -> int:
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights)[0]


def generate(
    events: int, alerts: int, seed: int = 7
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[str, int]], list[str]]:
    """Event rows, alert rows, (event id, alert number) links and agent ids."""
    rng = random.Random(seed)
    agent_ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(AGENTS)]
    kinds = [k for k in KINDS for _ in range(int(k[3] * 1000))]
    event_rows: list[tuple[Any, ...]] = []
    links: list[tuple[str, int]] = []
    alert_keys: dict[tuple[str, str, str], int] = {}
    alert_rows: list[list[Any]] = []
    seqs = [0] * AGENTS
    for _ in range(events):
        kind, rules, severities, _share = rng.choice(kinds)
        index = rng.randrange(AGENTS)
        seqs[index] += 1
        when = NOW - timedelta(seconds=rng.random() * SPAN.total_seconds())
        rule = rng.choice(rules) or None
        severity = weighted(rng, severities)
        account = f"wb_{rng.randrange(200):03d}" if kind.startswith("account.") else None
        evidence: dict[str, Any] = {"account": account} if account else {"n": seqs[index]}
        event_id = str(uuid.UUID(int=rng.getrandbits(128)))
        host = f"ws-{index:04d}"
        summary = f"{kind} 在 {host} 上的事件 {seqs[index]}"
        event_rows.append(
            (
                event_id,
                agent_ids[index],
                seqs[index],
                when,
                when,
                host,
                kind,
                severity,
                rule,
                "7",
                summary,
                account,
                orjson.dumps(evidence).decode(),
            )
        )
        if severity < 1:
            continue
        key = (rule or kind, host, account or "")
        number = alert_keys.get(key)
        if number is None and len(alert_rows) < alerts:
            number = alert_keys[key] = len(alert_rows)
            status = rng.choices(["new", "acknowledged", "in_progress", "closed"], [2, 1, 1, 6])[0]
            acknowledged = (
                when + timedelta(minutes=rng.randrange(1, 240)) if status != "new" else None
            )
            closed = (
                acknowledged + timedelta(hours=1) if status == "closed" and acknowledged else None
            )
            alert_rows.append(
                [
                    uuid.uuid4().hex + uuid.uuid4().hex,
                    rule,
                    kind,
                    severity,
                    host,
                    agent_ids[index],
                    account,
                    summary,
                    status,
                    None if status == "new" else "duty",
                    "true_positive" if closed else None,
                    "bench" if closed else None,
                    0,
                    when,
                    when,
                    event_id,
                    when,
                    when,
                    acknowledged,
                    closed,
                    0,
                ]
            )
        if number is None:
            number = alert_keys[key] = rng.randrange(len(alert_rows))
        row = alert_rows[number]
        row[12] += 1
        row[3] = max(row[3], severity)
        if when > row[14]:
            row[14], row[15] = when, event_id
        row[13] = min(row[13], when)
        links.append((event_id, number))
    return event_rows, [tuple(r) for r in alert_rows], links, agent_ids


def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    """Constant table and column names and ``?`` placeholders only; the values are bound."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({','.join('?' * len(columns))})"  # noqa: S608 (constant names and placeholders)


def load(
    db: Database,
    event_rows: list[tuple[Any, ...]],
    alert_rows: list[tuple[Any, ...]],
    links: list[tuple[str, int]],
    agent_ids: list[str],
) -> float:
    started = time.perf_counter()
    agents = [
        (agent_id, f"ws-{i:04d}", "court-a", NOW, "x" * 64, NOW)
        for i, agent_id in enumerate(agent_ids)
    ]
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if db.is_sqlite:

            def fix(
                rows: list[tuple[Any, ...]], times: tuple[int, ...]
            ) -> Iterator[tuple[Any, ...]]:
                for row in rows:
                    yield tuple(
                        sqlite_utc_text(v) if i in times and v is not None else v
                        for i, v in enumerate(row)
                    )

            cursor.execute("BEGIN")
            cursor.executemany(
                'INSERT INTO agents (id, hostname, "group", enrolled_at, '
                "secret_hash, last_seen_at) VALUES (?,?,?,?,?,?)",
                list(fix(agents, (3, 5))),
            )
            cursor.executemany(
                insert_sql("events", EVENT_COLUMNS),
                fix(event_rows, (3, 4)),
            )
            cursor.executemany(
                insert_sql("alerts", ALERT_COLUMNS),
                fix(alert_rows, (13, 14, 16, 17, 18, 19)),
            )
            cursor.executemany(
                "INSERT INTO alert_events (event_id, alert_id) VALUES (?, ?)",
                ((e, n + 1) for e, n in links),
            )
            cursor.execute("COMMIT")
            cursor.execute("ANALYZE")
        else:

            def copy(table: str, columns: tuple[str, ...], rows: Any) -> None:
                quoted = ", ".join(f'"{c}"' for c in columns)
                with cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as out:
                    for row in rows:
                        out.write_row(row)

            copy(
                "agents",
                ("id", "hostname", "group", "enrolled_at", "secret_hash", "last_seen_at"),
                agents,
            )
            copy("events", EVENT_COLUMNS, event_rows)
            copy("alerts", ALERT_COLUMNS, alert_rows)
            copy("alert_events", ("event_id", "alert_id"), ((e, n + 1) for e, n in links))
            raw.commit()
            cursor.execute("ANALYZE")
            raw.commit()
    finally:
        raw.close()
    users.create_user(db, "bench", "reviewer", PASSWORD, NOW)
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


WEEK_AGO = (NOW - timedelta(days=7)).isoformat()
DAY_AGO = (NOW - timedelta(days=1)).isoformat()
QUERIES: dict[str, str] = {
    "events, first page, no filter": "",
    "events, kind=outreach.flow & min_severity=high, 7 days": urlencode(
        {"kind": "outreach.flow", "min_severity": "high", "since": WEEK_AGO}
    ),
    "events, host=ws-0042": "host=ws-0042",
    "events, account=wb_007, 7 days": urlencode({"account": "wb_007", "since": WEEK_AGO}),
    "events, status=new (alert join)": "status=new",
    "events, q=ws-0042 (free text), 1 day": urlencode({"q": "ws-0042", "since": DAY_AGO}),
    "alerts, open (default page)": "status=new,acknowledged,in_progress",
    "alerts, all, min_severity=high": "min_severity=high",
    "alerts, host=ws-0042": "host=ws-0042",
}


def bench_backend(
    name: str, url: str, events: int, alerts: int, runs: int, rows: Any, loaded: bool = False
) -> None:
    import warnings as _w

    settings = CollectorSettings(database_url=url, tls=False, data_dir=Path(tempfile.mkdtemp()))
    db = Database.from_settings(settings)
    migrate.upgrade(db)
    if loaded:
        print(f"[{name}] reusing the store at {url}")
    else:
        generated = rows()
        seconds = load(db, *generated)
        print(
            f"[{name}] loaded {events:,} events, {alerts:,} alerts, "
            f"{len(generated[2]):,} links in {seconds:.0f} s"
        )
    for label, query in QUERIES.items():
        params = QueryParams(query)
        if label.startswith("events"):

            def call(params: QueryParams = params) -> Any:
                return data.events_listing(db, params, UTC)
        else:

            def call(params: QueryParams = params) -> Any:
                return data.alerts_listing(db, params, UTC)

        median, p90 = timed(call, runs)
        listing = call()
        shown = len(listing.get("events", listing.get("alerts", [])))
        print(
            f"[{name}] {label:<58} median {median:7.1f} ms  p90 {p90:7.1f} ms  "
            f"({shown} rows + counts)"
        )
    first = data.events_listing(db, QueryParams(""), UTC)
    params = QueryParams(f"cursor={first['next_cursor']}")
    median, p90 = timed(lambda: data.events_listing(db, params, UTC, False), runs)
    print(
        f"[{name}] {'events, second page (cursor), no counts':<58} median {median:7.1f} ms  "
        f"p90 {p90:7.1f} ms"
    )
    # the whole page through the ASGI app: session, query, template
    with _w.catch_warnings():
        _w.simplefilter("ignore")
        from starlette.testclient import TestClient

        from collector.app import create_app

        with TestClient(create_app(settings, db)) as client:
            import re

            login = client.get("/console/login")
            token = re.search(r'name="csrf" value="([^"]+)"', login.text)
            assert token is not None
            client.post(
                "/console/login",
                data={"username": "bench", "password": PASSWORD, "csrf": token.group(1)},
            )
            for label, path in (
                (
                    "page /console/events?kind=outreach.flow&min_severity=high",
                    "/console/events?kind=outreach.flow&min_severity=high",
                ),
                ("page /console/alerts (open alerts)", "/console/alerts"),
            ):

                def get(path: str = path) -> Any:
                    response = client.get(path)
                    assert response.status_code == 200

                median, p90 = timed(get, runs)
                print(f"[{name}] {label:<58} median {median:7.1f} ms  p90 {p90:7.1f} ms")
    db.dispose()


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument(
        "--sqlite-path",
        type=Path,
        default=None,
        help="keep the SQLite store here, and reuse it if it exists",
    )
    args = parser.parse_args()
    print(
        f"load average before: {', '.join(f'{x:.1f}' for x in psutil.getloadavg())} "
        f"on {psutil.cpu_count()} CPUs"
    )
    cache: list[Any] = []

    def rows() -> Any:
        if not cache:
            started = time.perf_counter()
            cache.append(generate(args.events, args.alerts))
            print(
                f"generated {args.events:,} events and {args.alerts:,} alerts in "
                f"{time.perf_counter() - started:.0f} s"
            )
        return cache[0]

    with ExitStack() as stack:
        for backend in args.backends.split(","):
            loaded = False
            if backend == "sqlite":
                if args.sqlite_path is not None:
                    path = args.sqlite_path
                    loaded = path.exists()
                else:
                    path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "bench.db"
                url = f"sqlite:///{path}"
            else:
                url = stack.enter_context(postgres_database(args.pg_url))
            bench_backend(backend, url, args.events, args.alerts, args.runs, rows, loaded)
    print(f"load average after: {', '.join(f'{x:.1f}' for x in psutil.getloadavg())}")


if __name__ == "__main__":
    main()
