"""A collector backed up while it serves, restored onto a fresh data dir: agents keep shipping.

The guarantee this checks: every event the store held when the backup began is
in the restored store; events the old collector acknowledged after that (the
agents dropped them from their spools) are not, and the restored collector
records them as sequence gaps of their agents, so the loss is visible, never
silent. Events made while no collector answers wait in the agents' spools and
arrive at the restored one. The agents neither enroll again nor change identity.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Agent, Collector, wait_until
from tests.postgres import postgres_database

pytestmark = pytest.mark.e2e


@pytest.fixture
def fresh_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> Iterator[str]:
    """An empty store of the same kind as the test's collector, as on a replacement server."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'replacement' / 'collector.db'}"
        return
    with postgres_database(request.getfixturevalue("pg_server_url")) as url:
        yield url


def _event_ids(collector: Collector) -> set[str]:
    return {row[0] for row in collector.query("SELECT id FROM events")}


def _notes(collector: Collector, agent: Agent, note: str) -> int:
    rows = collector.query(
        "SELECT COUNT(*) FROM events WHERE agent_id = :a AND kind = 'agent.test' "
        "AND summary LIKE :note", a=agent.agent_id, note=f"%{note}")
    return int(rows[0][0])


def _unexplained_missing_seqs(collector: Collector, agent: Agent) -> set[int]:
    """Seqs below the agent's highest stored one that are neither stored nor an open gap."""
    stored = {row[0] for row in collector.query(
        "SELECT seq FROM events WHERE agent_id = :a AND seq IS NOT NULL", a=agent.agent_id)}
    gaps = collector.query(
        "SELECT first_seq, last_seq FROM sequence_gaps WHERE agent_id = :a AND filled_at IS NULL",
        a=agent.agent_id)
    in_gaps = {seq for first, last in gaps for seq in range(first, last + 1)}
    return set(range(1, max(stored) + 1)) - stored - in_gaps


def test_agents_keep_shipping_to_a_collector_restored_on_a_fresh_data_dir(
    make_agent: Callable[..., Agent], collector: Collector, tmp_path: Path,
    fresh_database_url: str,
) -> None:
    agents = [make_agent("ws1"), make_agent("ws2")]
    for agent in agents:
        agent.start()
    for agent in agents:
        collector.wait_online(agent.agent_id)
    enrolled = {a.agent_id: (a.data_dir / "credentials.json").read_bytes() for a in agents}
    # Settings files of the test's own: the machine's /etc is never read or written.
    settings = tmp_path / "collector.toml"
    settings.write_text('log_level = "info"\n')
    collector.extra_env["COURTGUARD_COLLECTOR_CONFIG"] = str(settings)

    # Agents go on making events while the backup runs.
    feeding = threading.Event()
    feeding.set()

    def feed() -> None:
        while feeding.is_set():
            for agent in agents:
                agent.emit_test(20, note="during backup")

    for agent in agents:
        agent.emit_test(30, note="before backup")
    for agent in agents:
        wait_until(lambda agent=agent: _notes(collector, agent, "before backup") == 30, 30,
                   "the events made before the backup")
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        wait_until(lambda: all(_notes(collector, a, "during backup") for a in agents), 30,
                   "ingest going on while the backup starts")
        stored_before = _event_ids(collector)
        archive = tmp_path / "courtguard-backup.tar.gz"
        said = collector.cli("backup", str(archive)).stdout
    finally:
        feeding.clear()
        feeder.join(timeout=120)
    assert "mode 0600" in said and archive.stat().st_mode & 0o777 == 0o600
    wait_until(lambda: all(_notes(collector, a, "during backup") > 20 for a in agents), 30,
               "events acknowledged after the backup began")
    collector.stop()

    # The replacement: a fresh COURTGUARD home (data dir) and an empty database, same address.
    replacement = Collector(home=tmp_path / "replacement", database_url=fresh_database_url,
                            port=collector.port, extra_env=dict(collector.extra_env))
    replacement.home.mkdir(exist_ok=True)
    replacement_settings = replacement.home / "collector.toml"
    replacement_settings.write_text("")
    replacement.extra_env["COURTGUARD_COLLECTOR_CONFIG"] = str(replacement_settings)
    assert not replacement.data_dir.exists()
    restored = replacement.cli("restore", str(archive))
    assert "agents keep their enrollment" in restored.stdout, restored.stdout + restored.stderr
    replacement.admin_key = collector.admin_key  # API keys live in the restored database
    assert replacement.ca_file.read_bytes() == collector.ca_file.read_bytes()
    # The replacement's own settings file stays; the archived one is put beside it.
    assert replacement_settings.read_text() == ""
    assert replacement_settings.with_name("collector.toml.restored").read_text() \
        == settings.read_text()

    for agent in agents:
        agent.emit_test(15, note="while no collector answers")
    replacement.start()
    try:
        for agent in agents:
            agent.emit_test(10, note="after restore")
        for agent in agents:
            wait_until(lambda agent=agent: _notes(replacement, agent, "after restore") == 10
                       and _notes(replacement, agent, "while no collector answers") == 15,
                       60, f"{agent.agent_id}'s events at the restored collector")
            replacement.wait_online(agent.agent_id)

        assert stored_before <= _event_ids(replacement), "an event stored before the backup is lost"
        for agent in agents:
            assert _notes(replacement, agent, "before backup") == 30
            assert not _unexplained_missing_seqs(replacement, agent)
            assert agent.process is not None and agent.process.poll() is None
            assert (agent.data_dir / "credentials.json").read_bytes() == enrolled[agent.agent_id]
        listed = {row["id"] for row in replacement.api("/api/v1/agents")["agents"]}
        assert listed == set(enrolled)
        assert json.loads((agents[0].data_dir / "credentials.json").read_text())["agent_id"] \
            == agents[0].agent_id
    finally:
        replacement.stop()
