"""Fixtures for collector tests: a migrated store on SQLite and on PostgreSQL, an app, agents.

``database_url`` is parametrised, so every test that uses the store runs on
both backends. PostgreSQL gets one fresh database per test module on the
server named by ``COURTGUARD_TEST_PG_URL``; tables are emptied between tests.
Without a server the postgres cases skip, except on CI (``CI=true``) where
they fail.
"""

from __future__ import annotations

import gzip
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from agent.events import uuid7
from collector.app import create_app
from collector.policy.signing import ensure_signing_key
from collector.settings import CollectorSettings
from collector.store import apikeys, migrate, tokens
from collector.store.database import Database
from tests.postgres import postgres_database

with warnings.catch_warnings():
    # Starlette now prefers the httpx2 fork for its test client; httpx, which the agent
    # ships with, drives it the same for these tests.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
TABLES = ("events", "sequence_gaps", "agents", "enrollment_tokens", "api_keys", "policy_bundles",
          "policy_keys", "alert_events", "alert_changes", "alerts", "audit_log", "saved_filters",
          "console_sessions", "users", "deliveries", "notification_alerts", "notifications",
          "notify_group_alerts", "notify_groups", "escalations", "router_state", "silences",
          "duty_assignments", "patrol_documents", "doc_check_decisions", "doc_check_history",
          "export_cursors", "isolation_orders", "host_isolations", "leases", "alert_groups",
          "agent_upgrades", "agent_releases", "release_packages")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test alone, never from the machine's environment."""
    for name in list(os.environ):
        if name.startswith("COURTGUARD_COLLECTOR_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def pg_database(pg_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test module, dropped afterwards."""
    with postgres_database(pg_server_url) as url:
        db = Database.from_settings(CollectorSettings(database_url=url), single_connection=True)
        migrate.upgrade(db)
        db.dispose()
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'collector.db'}"
    url: str = request.getfixturevalue("pg_database")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        # The audit log's append-only trigger would refuse TRUNCATE; replica mode skips triggers.
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        conn.execute(sa.text("UPDATE policy_counter SET value = 0"))
    engine.dispose()
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> CollectorSettings:
    return CollectorSettings(
        data_dir=tmp_path / "data", database_url=database_url, tls=False, policy_dir=POLICIES,
        silent_check_interval_s=3600,
    )


@pytest.fixture
def db(settings: CollectorSettings) -> Iterator[Database]:
    database = Database.from_settings(settings)
    migrate.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def client(settings: CollectorSettings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db)) as test_client:
        yield test_client


@pytest.fixture
def signing(settings: CollectorSettings) -> Path:
    """The collector's policy signing key made in its data dir; the data dir."""
    ensure_signing_key(settings.data_dir)
    return settings.data_dir


@pytest.fixture
def admin_key(db: Database) -> str:
    return apikeys.create_api_key(db, name="test", role="admin", now=datetime.now(UTC))[1]


@pytest.fixture
def admin(admin_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_key}"}


def make_token(db: Database, uses: int | None = None, expires_in: timedelta | None = None,
               group: str = "court-a") -> str:
    now = datetime.now(UTC)
    return tokens.create_token(
        db, group=group, now=now, expires_at=now + (expires_in or timedelta(hours=1)), uses=uses
    ).token


@dataclass
class EnrolledAgent:
    agent_id: str
    secret: str
    hostname: str

    def headers(self, gzip_body: bool = False) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.agent_id}:{self.secret}",
                   "Content-Type": "application/json"}
        if gzip_body:
            headers["Content-Encoding"] = "gzip"
        return headers


def enroll(client: TestClient, db: Database, hostname: str = "ws-001") -> EnrolledAgent:
    response = client.post(
        "/api/v1/enroll",
        json={"token": make_token(db), "hostname": hostname, "agent_version": "0.1.0"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return EnrolledAgent(body["agent_id"], body["secret"], hostname)


@pytest.fixture
def agent(client: TestClient, db: Database) -> EnrolledAgent:
    return enroll(client, db)


def event(agent_id: str, seq: int, *, kind: str = "agent.test", severity: str = "low",
          host: str = "ws-001", time: datetime | None = None, **extra: Any) -> dict[str, Any]:
    evidence = extra.pop("evidence", {"note": "test", "index": seq})
    return {
        "id": str(uuid7()), "seq": seq, "time": (time or datetime.now(UTC)).isoformat(),
        "agent_id": agent_id, "host": host, "kind": kind, "severity": severity,
        "summary": "测试事件", "evidence": evidence, **extra,
    }


def heartbeat(agent_id: str, seq: int, **evidence: Any) -> dict[str, Any]:
    values = {"agent_version": "0.2.0", "uptime_s": 10.0, "interval_s": 30.0,
              "policy_version": "local-abc", "spool_depth": 3, "spool_bytes": 4096,
              "events_dropped": 0, "rss_bytes": 1 << 20, "cpu_percent": 0.5,
              "detectors": {"outreach": {"state": "ok"}}}
    values.update(evidence)
    return event(agent_id, seq, kind="agent.heartbeat", severity="info", evidence=values)


def batch_bytes(agent_id: str, events: list[dict[str, Any]], compress: bool = False,
                **extra: Any) -> bytes:
    body = orjson.dumps({"agent_id": agent_id, "sent_at": datetime.now(UTC).isoformat(),
                         "events": events, **extra})
    return gzip.compress(body, compresslevel=1) if compress else body


def post_events(client: TestClient, who: EnrolledAgent, events: list[dict[str, Any]],
                compress: bool = False) -> Any:
    return client.post("/api/v1/events", content=batch_bytes(who.agent_id, events, compress),
                       headers=who.headers(gzip_body=compress))


def snapshot(db: Database) -> dict[str, Any]:
    """Every row of the tables a refused request must leave alone."""
    with db.read() as conn:
        return {
            table: sorted(
                (tuple(str(v) for v in row) for row in conn.execute(sa.text(f"SELECT * FROM {table}"))),  # noqa: S608, E501 (constant table names)
            )
            for table in ("events", "agents", "sequence_gaps", "enrollment_tokens")
        }


@pytest.fixture
def live_url(settings: CollectorSettings, db: Database) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, for what TestClient cannot show."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(
        create_app(settings, db), host="127.0.0.1", port=0, log_config=None, access_log=False,
    ))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300  # a ceiling only a hung start reaches, however loaded
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started listening"
        assert time.monotonic() < deadline, "uvicorn did not start within 300 s"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
