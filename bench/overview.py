"""The overview's cost on a store grown through ingest: 100,000 events, SQLite and PostgreSQL.

Grows a fresh store the way ``bench/console.py`` does (a real collector takes
the events through ``POST /api/v1/events`` from enrolled agents: 30 days, every
pillar, ingest grouping them into alerts as in production), then times each
part of the overview (``collector.console.overview``: the figures per pillar
and window, the top lists, the newest alerts; the fleet from the agents
listing) and the whole page through the ASGI app, computed afresh each time
and served from the cache. The floor is the console's first events page
without filter (``data.events_listing``), measured in the same run: the
ratios say how many such pages one overview costs. Never fails on a figure.

    .venv/bin/python bench/overview.py [--events 100000] [--agents 200] [--runs 11]
        [--backends sqlite,postgres] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from starlette.datastructures import QueryParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from console import PASSWORD, grow, store_size, store_urls, timed

from agent.events import uuid7
from collector.console import data, overview, users
from collector.settings import CollectorSettings
from collector.store import migrate
from collector.store.database import Database
from tests.postgres import DEFAULT_PG_URL


def load_average() -> str:
    return ", ".join(f"{x:.1f}" for x in psutil.getloadavg())


def bench_backend(name: str, url: str, runs: int, events: int, agents: int) -> None:
    from starlette.testclient import TestClient

    from collector.app import create_app

    home = grow(name, url, events, agents, concurrency=4)
    settings = CollectorSettings(database_url=url, tls=False, data_dir=home)
    db = Database.from_settings(settings)
    migrate.upgrade(db)
    print(f"[{name}] store: {store_size(db)}; load average {load_average()}", flush=True)
    floor, _ = timed(lambda: data.events_listing(db, QueryParams(""), UTC), runs)
    print(f"[{name}] {'floor: events, first page, no filter':<44} median {floor:7.1f} ms")
    now = datetime.now(UTC)
    parts: dict[str, Callable[[], Any]] = {
        "live: today's figures, open alerts": lambda: overview.figures(
            db, now, ("today",), trend=False),
        "slow: 7 and 30 days, 30-day trend": lambda: overview.figures(
            db, now, ("7d", "30d"), trend=True),
        "top hosts, accounts, rules (7 days)": lambda: overview.top_lists(db, now),
        "newest high and critical alerts": lambda: overview.latest_alerts(db),
    }
    for label, call in parts.items():
        median, p90 = timed(call, runs)
        print(f"[{name}] {label:<44} median {median:7.1f} ms  p90 {p90:7.1f} ms  "
              f"({median / floor:5.1f}x floor)")
    login_name = f"bench{uuid7().hex[-8:]}"
    users.create_user(db, login_name, "reviewer", PASSWORD, datetime.now(UTC))
    with TestClient(create_app(settings, db)) as client:
        login = client.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert token is not None
        client.post("/console/login", data={"username": login_name, "password": PASSWORD,
                                            "csrf": token.group(1)})
        state = client.app.state

        def fresh() -> None:
            state.overview_cache = None  # every call computes the figures again
            assert client.get("/console/overview").status_code == 200

        def cached() -> None:
            assert client.get("/console/overview/live").status_code == 200

        for label, call in (("page /console/overview, computed", fresh),
                            ("page /console/overview/live, cached", cached)):
            median, p90 = timed(call, runs)
            print(f"[{name}] {label:<44} median {median:7.1f} ms  p90 {p90:7.1f} ms  "
                  f"({median / floor:5.1f}x floor)")
    db.dispose()
    print(f"[{name}] load average after: {load_average()}")


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    print(f"load average before: {load_average()} on {psutil.cpu_count()} CPUs")
    with ExitStack() as stack:
        for backend, url in store_urls(stack, args.backends, args.pg_url):
            bench_backend(backend, url, args.runs, args.events, args.agents)


if __name__ == "__main__":
    main()
