"""Accepted batches: stored once, acknowledged by id, and reflected on the agent's row."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from collector.store.database import Database
from collector.store.tables import agents, alert_events, events, sequence_gaps
from tests.collector.conftest import EnrolledAgent, enroll, event, heartbeat, post_events


def _agent_row(db: Database, agent_id: str) -> Any:
    with db.read() as conn:
        return conn.execute(sa.select(agents).where(agents.c.id == agent_id)).one()


def _gaps(db: Database, agent_id: str) -> list[tuple[int, int, bool]]:
    with db.read() as conn:
        rows = conn.execute(
            sa.select(sequence_gaps.c.first_seq, sequence_gaps.c.last_seq,
                      sequence_gaps.c.filled_at.is_(None))
            .where(sequence_gaps.c.agent_id == agent_id).order_by(sequence_gaps.c.first_seq)
        )
        return [tuple(row) for row in rows]


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())


def test_batch_accepted(client: Any, db: Database, agent: EnrolledAgent) -> None:
    """A valid gzip batch is stored and every id is acknowledged as accepted."""
    batch = [event(agent.agent_id, seq) for seq in (1, 2, 3)]
    response = post_events(client, agent, batch, compress=True)
    assert response.status_code == 200
    assert response.json()["accepted"] == [e["id"] for e in batch]
    assert response.json()["duplicates"] == []
    assert _count(db) == 3


def test_same_batch_twice(client: Any, db: Database, agent: EnrolledAgent) -> None:
    """Sending a batch again stores nothing new and acknowledges every id as a duplicate."""
    batch = [event(agent.agent_id, seq) for seq in (1, 2, 3)]
    post_events(client, agent, batch)
    response = post_events(client, agent, batch)
    assert response.json()["accepted"] == []
    assert response.json()["duplicates"] == [e["id"] for e in batch]
    assert _count(db) == 3


def test_seq_already_stored_is_refused_by_index(
    client: Any, db: Database, agent: EnrolledAgent
) -> None:
    """An event reusing a seq the agent already stored under another id is refused by its
    index with the agent's highest stored seq (a restarted spool renumbers above it), and
    nothing of that batch is stored."""
    post_events(client, agent, [event(agent.agent_id, seq) for seq in (1, 2)])
    again = [event(agent.agent_id, 3), event(agent.agent_id, 2)]
    response = post_events(client, agent, again)
    assert response.status_code == 422, response.text
    assert [(e["index"], e["loc"], e["max_seq"]) for e in response.json()["errors"]] == [
        (1, ["seq"], 2)]
    assert _count(db) == 2


def test_seq_repeated_in_one_batch_is_refused_by_index(
    client: Any, db: Database, agent: EnrolledAgent
) -> None:
    """The same seq twice in one batch under two ids makes no second row: 422 names the later."""
    batch = [event(agent.agent_id, 1), event(agent.agent_id, 2), event(agent.agent_id, 2)]
    response = post_events(client, agent, batch)
    assert response.status_code == 422, response.text
    assert [(e["index"], e["loc"]) for e in response.json()["errors"]] == [(2, ["seq"])]
    assert _count(db) == 0
    assert post_events(client, agent, batch[:2]).status_code == 200
    assert _count(db) == 2


def test_two_agents_may_share_an_event_id(client: Any, db: Database, agent: EnrolledAgent) -> None:
    """An event id another agent stored is not a duplicate for this one (a cloned
    workstation's spool): both are stored, and their shared alert links the id once."""
    other = enroll(client, db, hostname=agent.hostname)
    mine = event(agent.agent_id, 1, severity="high")
    theirs = {**mine, "agent_id": other.agent_id}
    assert post_events(client, agent, [mine]).json()["accepted"] == [mine["id"]]
    response = post_events(client, other, [theirs])
    assert response.json() == {**response.json(), "accepted": [mine["id"]], "duplicates": []}
    assert _count(db) == 2
    assert post_events(client, other, [theirs]).json()["duplicates"] == [mine["id"]]
    with db.read() as conn:
        links = conn.execute(sa.select(sa.func.count()).select_from(alert_events)).scalar_one()
    assert links == 1


def test_agent_row_updated(client: Any, db: Database, agent: EnrolledAgent) -> None:
    """A batch sets the agent's max_seq and last_seen_at."""
    post_events(client, agent, [event(agent.agent_id, seq) for seq in (1, 2, 3)])
    row = _agent_row(db, agent.agent_id)
    assert row.max_seq == 3 and row.last_seen_at is not None


def test_gap_recorded(client: Any, db: Database, agent: EnrolledAgent) -> None:
    """Seqs that jump past max_seq + 1 record the skipped range as an open gap."""
    post_events(client, agent, [event(agent.agent_id, seq) for seq in (1, 2, 6, 7, 9)])
    assert _gaps(db, agent.agent_id) == [(3, 5, True), (8, 8, True)]


def test_gap_split_and_filled(client: Any, db: Database, agent: EnrolledAgent) -> None:
    """A late event inside a gap splits it; the last missing ones fill it."""
    post_events(client, agent, [event(agent.agent_id, seq) for seq in (1, 6)])
    post_events(client, agent, [event(agent.agent_id, 3)])
    assert _gaps(db, agent.agent_id) == [(2, 2, True), (4, 5, True)]
    post_events(client, agent, [event(agent.agent_id, seq) for seq in (2, 4, 5)])
    assert [open_ for *_, open_ in _gaps(db, agent.agent_id)] == [False, False]
    assert _agent_row(db, agent.agent_id).max_seq == 6


def test_heartbeat_applied(client: Any, db: Database, agent: EnrolledAgent) -> None:
    """A heartbeat sets the agent's version, policy version, interval and health."""
    post_events(client, agent, [heartbeat(agent.agent_id, 1, spool_depth=7)])
    row = _agent_row(db, agent.agent_id)
    assert (row.agent_version, row.policy_version, row.heartbeat_interval_s) == (
        "0.2.0", "local-abc", 30.0)
    assert row.last_heartbeat["spool_depth"] == 7 and row.last_heartbeat_seq == 1


def test_older_heartbeat_ignored(client: Any, db: Database, agent: EnrolledAgent) -> None:
    """A heartbeat with a lower seq than the applied one does not overwrite it."""
    post_events(client, agent, [heartbeat(agent.agent_id, 5, spool_depth=5)])
    post_events(client, agent, [heartbeat(agent.agent_id, 4, spool_depth=4)])
    assert _agent_row(db, agent.agent_id).last_heartbeat["spool_depth"] == 5


def test_large_batch_accepted(client: Any, db: Database, agent: EnrolledAgent) -> None:
    """A full batch of 5000 events over a megabyte takes the pre-checked path and is stored."""
    batch = [event(agent.agent_id, seq, evidence={"note": "x" * 200}) for seq in range(1, 5001)]
    response = post_events(client, agent, batch, compress=True)
    assert response.status_code == 200 and len(response.json()["accepted"]) == 5000
    assert _count(db) == 5000
