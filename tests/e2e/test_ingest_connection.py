"""A real agent keeps its ingest connection to a real collector (HTTPS) across heartbeats.

The agent's ``keepalive_expiry_s`` is above its heartbeat interval and below the
collector's ``keep_alive_timeout_s`` (both shipped defaults): its heartbeats go
out one after another on the connection the first one opened, with no new TCP
and TLS handshake each. The collector counts the connections it accepts
(``courtguard_connections_opened_total``), read on a metrics listener of its own
so the scrapes are not counted. With the agent's former default (10 s, below the
heartbeat interval used here) every heartbeat opened a connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.settings import AgentSettings
from collector.settings import CollectorSettings
from tests.e2e.harness import Agent, Collector, free_port, wait_until

pytestmark = pytest.mark.e2e

#: Above the agent's former keepalive_expiry_s (10 s), so a connection given up between
#: heartbeats shows; well below the shipped one.
HEARTBEAT_S = 11
#: Heartbeats counted after the agent settled.
HEARTBEATS = 3
_OPENED = re.compile(r"^courtguard_connections_opened_total (\S+)$", re.MULTILINE)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[Collector, int]]:
    port = free_port()
    config = tmp_path / "collector.toml"
    config.write_text(f'[metrics]\nlisten = "127.0.0.1:{port}"\n', encoding="utf-8")
    instance = Collector(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'collector.db'}",
                         extra_env={"COURTGUARD_COLLECTOR_CONFIG": str(config)})
    instance.init()
    instance.start()
    yield instance, port
    instance.stop()


def opened(port: int) -> int:
    """Connections the collector's main port accepted so far."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    found = _OPENED.search(text)
    assert found, "the collector exports courtguard_connections_opened_total"
    return int(float(found.group(1)))


def heartbeats(collector: Collector, agent_id: str) -> int:
    return int(collector.query(
        "SELECT COUNT(*) FROM events WHERE agent_id = :agent_id AND kind = 'agent.heartbeat'",
        agent_id=agent_id)[0][0])


def test_the_shipped_defaults_keep_the_agent_connection_longer_than_a_heartbeat() -> None:
    """The shipped pacing: expiry above the heartbeat, below the collector's keep-alive."""
    agent, server = AgentSettings.model_fields, CollectorSettings.model_fields
    heartbeat = agent["heartbeat_interval_s"].default
    expiry = agent["keepalive_expiry_s"].default
    assert heartbeat < expiry < server["keep_alive_timeout_s"].default
    assert expiry > HEARTBEAT_S


def test_heartbeats_reuse_one_connection(
    collector: tuple[Collector, int], tmp_path: Path
) -> None:
    """Several heartbeats, no new connection accepted between the first and the last."""
    instance, metrics_port = collector
    agent = Agent(home=tmp_path / "a", collector=instance, settings={
        "heartbeat_interval_s": str(HEARTBEAT_S),
        # Nothing else on a timer within the window: the policy client's held fetches
        # follow one another on their own kept connection, isolation and upgrade checks
        # wait a poll interval past the test.
        "policy_poll_s": "3600",
    })
    agent.enroll()
    agent.start()
    try:
        # Settled: the agent's clients have made their first connections.
        wait_until(lambda: heartbeats(instance, agent.agent_id) >= 2, HEARTBEAT_S * 3,
                   "the agent's second heartbeat")
        before, beats = opened(metrics_port), heartbeats(instance, agent.agent_id)
        wait_until(lambda: heartbeats(instance, agent.agent_id) >= beats + HEARTBEATS,
                   HEARTBEAT_S * (HEARTBEATS + 2), f"{HEARTBEATS} more heartbeats")
        assert opened(metrics_port) - before == 0, (
            f"{HEARTBEATS} heartbeats {HEARTBEAT_S} s apart opened "
            f"{opened(metrics_port) - before} connections; they should reuse one")
    finally:
        agent.stop()
