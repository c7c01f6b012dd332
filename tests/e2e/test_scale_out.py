"""Several collector processes on one PostgreSQL store behave as one collector."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    Agent,
    Collector,
    agent_headers,
    batch_body,
    synthetic_events,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["postgres"], indirect=True)]


@pytest.fixture
def second_collector(tmp_path: Path, collector: Collector) -> Iterator[Collector]:
    """Another collector process on the same PostgreSQL database, over plain HTTP."""
    other = Collector(home=tmp_path / "second", database_url=collector.database_url, tls=False)
    other.home.mkdir()
    other.admin_key = collector.admin_key
    other.extra_env["COURTGUARD_COLLECTOR_SILENT_CHECK_INTERVAL_S"] = "0.5"
    other.start()
    yield other
    other.stop()


def test_batch_through_one_process_is_read_through_another(
    collector: Collector, second_collector: Collector, make_agent: Callable[..., Agent]
) -> None:
    """An agent's credentials work on every process, and what one stores the other serves."""
    agent = make_agent()
    credentials = json.loads((agent.data_dir / "credentials.json").read_text())
    events = synthetic_events(agent.agent_id, 1, 10)
    with second_collector.http() as client:
        response = client.post(
            "/api/v1/events",
            content=batch_body(agent.agent_id, events),
            headers=agent_headers(credentials),
        )
    assert response.status_code == 200, response.text
    served = collector.events(agent_id=agent.agent_id, kind="agent.test")
    assert sorted(e["id"] for e in served) == sorted(e["id"] for e in events)


def test_two_monitors_report_a_silent_agent_once(
    collector: Collector, second_collector: Collector, make_agent: Callable[..., Agent]
) -> None:
    """Both processes look for silent agents; the agent is still reported silent exactly once."""
    agent = make_agent()
    agent.start()
    collector.wait_online(agent.agent_id)
    agent.stop(signal.SIGKILL)
    wait_until(
        lambda: collector.events(agent_id=agent.agent_id, kind="agent.silent"),
        30,
        "an agent.silent event",
    )
    time.sleep(3)
    rows = collector.query(
        "SELECT COUNT(*) FROM events WHERE agent_id = :a AND kind = 'agent.silent'",
        a=agent.agent_id,
    )
    assert rows[0][0] == 1
