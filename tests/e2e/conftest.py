"""Fixtures for end-to-end tests: a real collector per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e import harness
from tests.e2e.harness import Agent, Collector
from tests.postgres import postgres_database


@pytest.fixture(scope="session", autouse=True)
def _no_process_outlives_the_session() -> Iterator[None]:
    """Kill, and name, any collector or agent a test started and nothing stopped."""
    yield
    left = harness.sweep()
    if left:
        warnings.warn(f"killed at session end, never stopped: {', '.join(left)}", stacklevel=1)


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
    with contextlib.ExitStack() as stops:  # every agent is stopped, even if another's stop fails

        def build(name: str = "ws", **settings: str) -> Agent:
            agent = Agent(home=tmp_path / name, collector=collector, settings=dict(settings))
            stops.callback(agent.stop)
            agent.home.mkdir(parents=True, exist_ok=True)
            agent.enroll()
            return agent

        yield build
