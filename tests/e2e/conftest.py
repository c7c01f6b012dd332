"""Fixtures for end-to-end tests: a real collector per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.e2e.harness import DEFAULT_PG_URL, Agent, Collector, postgres_database

PG_SERVER_URL = os.environ.get("COURTGUARD_TEST_PG_URL", DEFAULT_PG_URL)


def _postgres_reachable() -> str | None:
    engine = sa.create_engine(PG_SERVER_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return None
    except sa.exc.OperationalError as exc:
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store for one test: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'collector.db'}"
        return
    problem = _postgres_reachable()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_SERVER_URL} is required on CI: {problem}")
        pytest.skip(f"PostgreSQL at {PG_SERVER_URL} is not reachable: {problem}")
    with postgres_database(PG_SERVER_URL) as url:
        yield url


@pytest.fixture
def collector(tmp_path: Path, database_url: str) -> Iterator[Collector]:
    """An initialised collector, serving HTTPS on a free loopback port."""
    instance = Collector(home=tmp_path, database_url=database_url)
    instance.extra_env["COURTGUARD_COLLECTOR_SILENT_CHECK_INTERVAL_S"] = "0.5"
    instance.init()
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def make_agent(tmp_path: Path, collector: Collector) -> Iterator[Callable[..., Agent]]:
    """Build enrolled agents against the test's collector; all are stopped afterwards."""
    agents: list[Agent] = []

    def build(name: str = "ws", **settings: str) -> Agent:
        agent = Agent(home=tmp_path / name, collector=collector, settings=dict(settings))
        agent.home.mkdir(parents=True, exist_ok=True)
        agent.enroll()
        agents.append(agent)
        return agent

    yield build
    for agent in agents:
        agent.stop()
