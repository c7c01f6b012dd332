"""Figures for directory sign-on and for the agent-health part of /metrics.

1. /metrics with ``--agents`` agents in a SQLite store (rows inserted in bulk,
   a third of them with a degraded detector, three versions, four policy
   versions): the whole exposition (``Metrics.render``, which reads the
   agents table and aggregates) against its floor, the read of the agents
   table alone (``health_rows``). Median and p90 of 11 after a warm-up.
2. Directory sign-in against a real slapd on loopback (StartTLS, service
   account search, group search, the user's bind): ``Directory.authenticate``
   against its floor, one StartTLS connection and bind of the service
   account. Median and p90 of ``--samples``.
3. A directory that takes the connection and never answers, with
   ``timeout_s = 1``: how long the sign-in waits before "unavailable".

Prints figures, ratios and the load average; it never fails on a figure.

    .venv/bin/python bench/directory_metrics.py [--agents 5000] [--samples 30]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from collector.console.directory import Directory
from collector.console.directory_settings import OPENLDAP_LOCKED, DirectorySettings
from collector.metrics import Metrics
from collector.settings import CollectorSettings
from collector.store import migrate
from collector.store.agents import health_rows
from collector.store.database import Database
from collector.store.tables import agents
from tests.ldap_server import (
    ADMINS,
    AUDITORS,
    GROUPS,
    PEOPLE,
    PEOPLE_ENTRIES,
    REVIEWERS,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
)


def timed(call: Callable[[], object], runs: int) -> tuple[float, float]:
    call()  # warm-up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9) - 1 if runs >= 10 else -1]


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def bench_metrics(home: Path, count: int) -> None:
    settings = CollectorSettings(data_dir=home, database_url=f"sqlite:///{home / 'm.db'}")
    db = Database.from_settings(settings)
    migrate.upgrade(db)
    now = datetime.now(UTC)
    rows = []
    for n in range(count):
        detectors = {"outreach": {"state": "degraded" if n % 3 == 0 else "ok"},
                     "documents": {"state": "ok"}}
        rows.append({
            "id": str(uuid.uuid4()), "hostname": f"ws-{n:05d}", "group": "court-a", "os": "",
            "enrolled_at": now, "secret_hash": "0" * 64, "last_seen_at": now,
            "heartbeat_interval_s": 60.0, "agent_version": f"0.{n % 3}.0",
            "policy_version": f"p-{n % 4}", "last_heartbeat": {"detectors": detectors},
            "max_seq": 1,
        })
    with db.write() as conn:
        conn.execute(insert(agents), rows)
    metrics = Metrics()
    metrics.watch_agents(lambda: health_rows(db), lambda _row, _now: "online")
    floor = timed(lambda: health_rows(db), 11)
    whole = timed(metrics.render, 11)
    print(f"/metrics, {count} agents (SQLite): render median {whole[0]:.1f} ms, "
          f"p90 {whole[1]:.1f} ms; floor (read the agents table) median {floor[0]:.1f} ms, "
          f"p90 {floor[1]:.1f} ms; ratio {whole[0] / floor[0]:.2f}")
    db.dispose()


def bench_directory(home: Path, samples: int) -> None:
    slapd = Slapd(home / "slapd")
    slapd.configure()
    slapd.start()
    try:
        slapd.load()
        secret = home / "service.password"
        secret.write_text(SERVICE_PASSWORD, encoding="utf-8")
        settings = DirectorySettings(
            url=slapd.url, starttls=True, ca_file=slapd.ca_file, service_bind_dn=SERVICE_DN,
            service_password_file=secret, user_search_base=PEOPLE, group_search_base=GROUPS,
            group_roles={ADMINS: "admin", REVIEWERS: "reviewer", AUDITORS: "auditor"},
            disabled_filter=OPENLDAP_LOCKED,
        )
        directory = Directory(settings)
        password = PEOPLE_ENTRIES["wangfang"][1]
        assert directory.authenticate("wangfang", password).outcome == "ok"

        def service_bind() -> None:
            conn, bound = directory._connect(SERVICE_DN, SERVICE_PASSWORD)
            assert bound
            directory._close(conn)

        floor = timed(service_bind, samples)
        whole = timed(lambda: directory.authenticate("wangfang", password), samples)
        print(f"directory sign-in (slapd, StartTLS, search + bind + groups): median "
              f"{whole[0]:.1f} ms, p90 {whole[1]:.1f} ms; floor (one StartTLS service bind) "
              f"median {floor[0]:.1f} ms, p90 {floor[1]:.1f} ms; ratio {whole[0] / floor[0]:.2f}")
    finally:
        slapd.stop()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        dead = Directory(settings.model_copy(update={
            "url": f"ldap://127.0.0.1:{silent.getsockname()[1]}", "timeout_s": 1,
            "connect_timeout_s": 1}))
        started = time.perf_counter()
        outcome = dead.authenticate("wangfang", password).outcome
        waited = time.perf_counter() - started
    print(f"silent directory (timeout_s = 1): {outcome} after {waited:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    print(f"load average before: {load()}")
    with tempfile.TemporaryDirectory(prefix="cg-bench-dm-") as tmp:
        bench_metrics(Path(tmp), args.agents)
        bench_directory(Path(tmp), args.samples)
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
