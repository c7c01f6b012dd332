"""One event made on a workstation reaches the central store exactly once, whatever fails."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.harness import Agent, Collector, wait_until

pytestmark = pytest.mark.e2e


def count_test_events(collector: Collector, agent: Agent) -> int:
    rows = collector.query(
        "SELECT COUNT(*) FROM events WHERE agent_id = :a AND kind = 'agent.test'", a=agent.agent_id
    )
    return int(rows[0][0])


def assert_each_test_event_once(collector: Collector, agent: Agent, expected: int) -> None:
    rows = collector.query(
        "SELECT id, seq FROM events WHERE agent_id = :a AND kind = 'agent.test'", a=agent.agent_id
    )
    assert len(rows) == expected
    assert len({row.id for row in rows}) == expected
    assert len({row.seq for row in rows}) == expected


def agent_seqs_in_arrival_order(collector: Collector, agent: Agent) -> list[int]:
    rows = collector.query(
        "SELECT seq FROM events WHERE agent_id = :a AND seq IS NOT NULL ORDER BY pk",
        a=agent.agent_id,
    )
    return [row.seq for row in rows]


def test_started_event_reaches_store_once(
    make_agent: Callable[..., Agent], collector: Collector
) -> None:
    """The agent's start-up event is in the store exactly once, and readable through the API."""
    agent = make_agent()
    agent.start()
    wait_until(
        lambda: collector.events(agent_id=agent.agent_id, kind="agent.started"),
        20,
        "agent.started in the read API",
    )
    rows = collector.query(
        "SELECT COUNT(*) FROM events WHERE agent_id = :a AND kind = 'agent.started'",
        a=agent.agent_id,
    )
    assert rows[0][0] == 1


def test_heartbeat_updates_agent_listing(
    make_agent: Callable[..., Agent], collector: Collector
) -> None:
    """Heartbeats make the agent online in the agents API, with its version and spool figures."""
    agent = make_agent()
    agent.start()

    row = collector.wait_online(agent.agent_id)
    assert row["policy_version"]
    assert row["spool_depth"] is not None and row["events_dropped"] == 0


def test_collector_outage_delivers_every_event_once_in_order(
    make_agent: Callable[..., Agent], collector: Collector
) -> None:
    """Events made while the collector is down arrive once each, in per-agent sequence order."""
    agent = make_agent()
    agent.start()
    agent.emit_test(50, note="before")
    wait_until(lambda: count_test_events(collector, agent) == 50, 30, "the first 50 events")

    collector.stop()
    for _ in range(5):
        agent.emit_test(40, note="during outage")
        time.sleep(0.3)
    assert agent.status()["spool"]["depth"] >= 200
    collector.start()

    wait_until(lambda: count_test_events(collector, agent) == 250, 60, "all 250 test events")
    assert_each_test_event_once(collector, agent, 250)
    seqs = agent_seqs_in_arrival_order(collector, agent)
    assert seqs == sorted(seqs), "events arrived out of per-agent sequence order"


def test_agent_sigkill_mid_batch_loses_and_duplicates_nothing(
    make_agent: Callable[..., Agent], collector: Collector
) -> None:
    """An agent killed with SIGKILL while shipping, then restarted, delivers every event once."""
    total = 4000
    # Paced so the backlog outlasts three kills even when noticing progress is slow (a
    # loaded machine): a batch of 200 every quarter second, five seconds for all of it.
    agent = make_agent(batch_max_events="200", drain_rate_eps="800")
    agent.emit_test(total, padding=1500)
    for kill in range(3):
        agent.start(wait_ready=False)
        already = count_test_events(collector, agent)
        wait_until(
            lambda already=already: count_test_events(collector, agent) > already,
            30,
            f"shipping to progress before kill {kill + 1}",
            every=0.02,
        )
        agent.stop(signal.SIGKILL)
        assert count_test_events(collector, agent) < total, "backlog drained before the kill"
    agent.start()
    wait_until(lambda: count_test_events(collector, agent) == total, 90, f"all {total} events")
    assert_each_test_event_once(collector, agent, total)


def test_spool_full_drops_least_severe_and_reports(
    make_agent: Callable[..., Agent], collector: Collector
) -> None:
    """A full spool stays within its bound, keeps high events, and the drop event arrives."""
    limit = 256 * 1024
    agent = make_agent(spool_max_bytes=str(limit))
    collector.stop()
    agent.start()
    agent.emit_test(20, severity="high", padding=1000, note="keep")
    for _ in range(5):
        agent.emit_test(200, severity="low", padding=1000, note="filler")
    spool_file = agent.data_dir / "spool.db"
    on_disk = sum(p.stat().st_size for p in agent.data_dir.glob("spool.db*"))
    assert spool_file.exists()
    assert on_disk < 4 * limit + 1024 * 1024, (
        f"spool uses {on_disk} bytes on disk for a {limit} limit"
    )
    status = agent.status()
    assert status["spool"]["bytes"] <= limit
    assert status["spool"]["dropped_total"] > 0

    collector.start()
    dropped = wait_until(
        lambda: collector.events(agent_id=agent.agent_id, kind="agent.spool_dropped"),
        60,
        "the agent.spool_dropped event",
    )
    counts = dropped[0]["evidence"]["dropped"]
    assert counts.get("low", 0) > 0
    assert counts.get("high", 0) == 0
    wait_until(
        lambda: (
            collector.query(
                "SELECT COUNT(*) FROM events"
                " WHERE agent_id = :a AND severity = 3 AND kind = 'agent.test'",
                a=agent.agent_id,
            )[0][0]
            == 20
        ),
        60,
        "all 20 high events",
    )


def test_revoked_agent_stops_shipping_and_keeps_events(
    make_agent: Callable[..., Agent], collector: Collector
) -> None:
    """A revoked agent gets 401, says why in its log, stops shipping and loses nothing locally."""
    agent = make_agent()
    agent.start()
    wait_until(lambda: agent.status()["spool"]["depth"] == 0, 20, "the start-up backlog to drain")
    collector.cli("agent", "revoke", agent.agent_id, "--reason", "workstation retired")
    agent.emit_test(10)
    wait_until(lambda: "agent_revoked" in agent.log(), 20, "the agent to log the revocation")
    time.sleep(2)
    assert count_test_events(collector, agent) == 0
    assert agent.status()["spool"]["depth"] >= 10
    assert agent.process is not None and agent.process.poll() is None, "the agent must keep running"


def test_silent_agent_gets_one_silent_event(
    make_agent: Callable[..., Agent], collector: Collector
) -> None:
    """An agent that stops heartbeating is reported silent once by the collector."""
    agent = make_agent()
    agent.start()
    collector.wait_online(agent.agent_id)
    agent.stop(signal.SIGKILL)
    events = wait_until(
        lambda: collector.events(agent_id=agent.agent_id, kind="agent.silent"),
        30,
        "an agent.silent event",
    )
    time.sleep(2)
    again = collector.events(agent_id=agent.agent_id, kind="agent.silent")
    assert len(again) == 1
    assert events[0]["rule_id"] == "agent.silent"
    assert events[0]["severity"] == "high"
    statuses = {a["id"]: a["status"] for a in collector.api("/api/v1/agents")["agents"]}
    assert statuses[agent.agent_id] == "silent"


#: Makes the real store fail to insert one event, as an unforeseen storage bug would: a
#: trigger raising an error that is neither a refusal nor the database being down.
POISON_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.kind = 'agent.test'"
        " AND json_extract(NEW.evidence, '$.note') = 'poison'"
        " BEGIN SELECT RAISE(ABORT, 'poisoned event'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.kind = 'agent.test' AND NEW.evidence->>'note' = 'poison' THEN"
        " RAISE EXCEPTION 'poisoned event'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION poison()",
    ],
}


def notes_stored(collector: Collector, agent: Agent) -> dict[str, int]:
    rows = collector.query(
        "SELECT evidence FROM events WHERE agent_id = :a AND kind = 'agent.test'", a=agent.agent_id
    )
    counts: dict[str, int] = {}
    for (evidence,) in rows:
        note = (json.loads(evidence) if isinstance(evidence, str) else evidence)["note"]
        counts[note] = counts.get(note, 0) + 1
    return counts


def test_event_the_store_fails_on_is_quarantined_and_the_rest_arrive(
    make_agent: Callable[..., Agent], collector: Collector
) -> None:
    """An event the collector answers 500 for, every time, while it is otherwise healthy, is
    isolated by halving and quarantined; the events after it and the heartbeats arrive, and
    the heartbeat reports the quarantine."""
    engine = collector.engine()
    with engine.begin() as conn:
        for statement in POISON_TRIGGER[engine.dialect.name]:
            conn.exec_driver_sql(statement)
    engine.dispose()
    agent = make_agent()
    agent.emit_test(30, note="before")
    agent.emit_test(1, note="poison")
    agent.emit_test(30, note="after")
    agent.start()

    wait_until(lambda: notes_stored(collector, agent) == {"before": 30, "after": 30}, 60,
               "every event but the poisoned one")
    assert agent.status()["spool"]["quarantined"] == 1
    assert "collector_failed" in agent.log()
    wait_until(lambda: last_heartbeat(collector, agent).get("events_quarantined") == 1, 20,
               "a heartbeat reporting the quarantined event")
    assert "poison" not in notes_stored(collector, agent)


def last_heartbeat(collector: Collector, agent: Agent) -> dict[str, Any]:
    rows = collector.query("SELECT last_heartbeat FROM agents WHERE id = :a", a=agent.agent_id)
    value = rows[0][0] if rows else None
    beat: dict[str, Any] = json.loads(value) if isinstance(value, str) else (value or {})
    return beat


def test_store_outage_quarantines_nothing(
    make_agent: Callable[..., Agent], collector: Collector
) -> None:
    """While the collector answers but its store is locked (503 on SQLite, requests that time
    out on PostgreSQL), events wait; none is quarantined, and all arrive once it is free."""
    collector.stop()
    collector.extra_env["COURTGUARD_COLLECTOR_SQLITE_BUSY_TIMEOUT_MS"] = "100"
    collector.start()
    agent = make_agent(http_timeout_s="1")
    agent.start()
    collector.wait_online(agent.agent_id)
    engine = collector.engine()
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.begin()
            conn.exec_driver_sql("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        agent.emit_test(40, note="during")
        failures_before = failed_rounds(agent)
        # More failed rounds than a poison hunt needs to start (SERVER_ERRORS_BEFORE_SPLIT).
        wait_until(lambda: failed_rounds(agent) >= failures_before + 4, 30,
                   "the agent to fail several rounds against the locked store")
        assert agent.status()["spool"]["quarantined"] == 0
        conn.rollback()
    engine.dispose()
    wait_until(lambda: count_test_events(collector, agent) == 40, 60, "all 40 events")
    assert agent.status()["spool"]["quarantined"] == 0


def failed_rounds(agent: Agent) -> int:
    log = agent.log()
    return log.count("shipping failed") + log.count("collector asks to retry later")


def test_spool_moved_aside_renumbers_and_loses_nothing(
    make_agent: Callable[..., Agent], collector: Collector
) -> None:
    """An agent whose spool was moved aside starts numbering at 1 again; the collector holds
    those seqs already, so the agent renumbers above them and every new event arrives."""
    agent = make_agent()
    agent.start()
    agent.emit_test(20, note="first spool")
    wait_until(lambda: count_test_events(collector, agent) == 20, 30, "the first 20 events")
    agent.stop()
    for path in agent.data_dir.glob("spool.db*"):
        path.rename(path.with_name(path.name + ".aside"))
    agent.emit_test(15, note="new spool")
    assert agent.status()["spool"]["next_seq"] == 16
    agent.start()
    wait_until(lambda: count_test_events(collector, agent) == 35, 30, "the 15 new events")
    assert agent.status()["spool"]["quarantined"] == 0
    assert_each_test_event_once(collector, agent, 35)
