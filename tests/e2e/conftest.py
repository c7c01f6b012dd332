"""Fixtures for end-to-end tests: a real collector per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Agent, Collector
from tests.postgres import postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store for one test: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'collector.db'}"
        return
    with postgres_database(request.getfixturevalue("pg_server_url")) as url:
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
