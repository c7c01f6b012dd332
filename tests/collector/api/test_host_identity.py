"""One identity per host: a re-enrollment with the same fingerprint supersedes the old agent."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from agent.events import Severity
from collector.app import create_app
from collector.settings import CollectorSettings
from collector.store.database import Database
from collector.store.tables import agents, events
from tests.collector.conftest import EnrolledAgent, heartbeat, make_token, post_events

FINGERPRINT = hashlib.sha256(b"ws-001 board").hexdigest()
OTHER_FINGERPRINT = hashlib.sha256(b"ws-002 board").hexdigest()


def _enroll(client: Any, token: str, fingerprint: str | None = FINGERPRINT,
            hostname: str = "ws-001") -> EnrolledAgent:
    body: dict[str, Any] = {"token": token, "hostname": hostname, "agent_version": "0.1.0"}
    if fingerprint is not None:
        body["host_fingerprint"] = fingerprint
    response = client.post("/api/v1/enroll", json=body)
    assert response.status_code == 201, response.text
    answer = response.json()
    return EnrolledAgent(answer["agent_id"], answer["secret"], hostname)


def _kinds(db: Database, kind: str) -> list[Any]:
    with db.read() as conn:
        return list(conn.execute(sa.select(events).where(events.c.kind == kind)).all())


def test_reenrollment_supersedes_old_identity(client: Any, db: Database) -> None:
    """The same fingerprint in the same group: the old agent is superseded, with an event."""
    token = make_token(db)
    old = _enroll(client, token)
    response = client.post("/api/v1/enroll", json={
        "token": token, "hostname": "ws-001", "agent_version": "0.2.0",
        "host_fingerprint": FINGERPRINT})
    assert response.status_code == 201
    new_id = response.json()["agent_id"]
    assert response.json()["superseded_agent_id"] == old.agent_id
    with db.read() as conn:
        row = conn.execute(sa.select(agents).where(agents.c.id == old.agent_id)).one()
    assert (row.superseded_by, row.revoked_at is not None) == (new_id, True)
    [superseded] = _kinds(db, "agent.superseded")
    assert superseded.agent_id == new_id
    assert superseded.evidence["previous_agent_id"] == old.agent_id


def test_superseded_credentials_answer_401_with_reason(client: Any, db: Database) -> None:
    """The old identity can no longer write, and is told why."""
    token = make_token(db)
    old = _enroll(client, token)
    new = _enroll(client, token)
    response = post_events(client, old, [heartbeat(old.agent_id, 1)])
    assert (response.status_code, response.json()["error"]) == (401, "agent_superseded")
    assert new.agent_id in response.json()["detail"]
    assert post_events(client, new, [heartbeat(new.agent_id, 1)]).status_code == 200


def test_first_enrollment_answer_has_no_superseded_field(client: Any, db: Database) -> None:
    """An agent that predates the field (extra=forbid) still reads a plain enrollment answer."""
    response = client.post("/api/v1/enroll", json={
        "token": make_token(db), "hostname": "ws-001", "agent_version": "0.1.0",
        "host_fingerprint": FINGERPRINT})
    assert "superseded_agent_id" not in response.json()


def test_other_fingerprint_does_not_supersede(client: Any, db: Database) -> None:
    """Two hosts with one group token stay two current agents."""
    token = make_token(db)
    first = _enroll(client, token)
    _enroll(client, token, OTHER_FINGERPRINT, hostname="ws-002")
    assert post_events(client, first, [heartbeat(first.agent_id, 1)]).status_code == 200
    assert _kinds(db, "agent.superseded") == []


def test_enrollment_without_fingerprint_never_supersedes(client: Any, db: Database) -> None:
    """An older agent sends no fingerprint and enrolls beside the host's current agent."""
    token = make_token(db)
    first = _enroll(client, token)
    _enroll(client, token, fingerprint=None)
    assert post_events(client, first, [heartbeat(first.agent_id, 1)]).status_code == 200


def test_other_group_does_not_supersede(client: Any, db: Database) -> None:
    """A token of another group cannot take a host's identity; the conflict is a high event."""
    victim = _enroll(client, make_token(db, group="court-a"))
    intruder = _enroll(client, make_token(db, group="court-b"))
    assert post_events(client, victim, [heartbeat(victim.agent_id, 1)]).status_code == 200
    [conflict] = _kinds(db, "agent.host_conflict")
    assert (conflict.agent_id, conflict.severity) == (intruder.agent_id, Severity.HIGH.rank)
    assert conflict.evidence["existing_agent_id"] == victim.agent_id


def test_supersede_switched_off(settings: CollectorSettings, db: Database) -> None:
    """With supersede_same_host off both identities stay and the conflict is reported."""
    strict = settings.model_copy(update={"supersede_same_host": False})
    with TestClient(create_app(strict, db)) as client:
        token = make_token(db)
        first = _enroll(client, token)
        _enroll(client, token)
        assert post_events(client, first, [heartbeat(first.agent_id, 1)]).status_code == 200
    assert len(_kinds(db, "agent.host_conflict")) == 1
    assert _kinds(db, "agent.superseded") == []


def test_malformed_fingerprint_is_refused(client: Any, db: Database) -> None:
    """A fingerprint that is not a SHA-256 hex digest is a 422 naming the field."""
    response = client.post("/api/v1/enroll", json={
        "token": make_token(db), "hostname": "ws-001", "agent_version": "0.1.0",
        "host_fingerprint": "not-a-digest"})
    assert response.status_code == 422
    assert ["host_fingerprint"] in [e["loc"] for e in response.json()["errors"]]


def test_agents_listing_shows_one_identity_per_host(
    client: Any, db: Database, admin: dict[str, str]
) -> None:
    """GET /api/v1/agents lists the current agent once, with its predecessors, newest first."""
    token = make_token(db)
    first = _enroll(client, token)
    second = _enroll(client, token)
    third = _enroll(client, token)
    _enroll(client, token, OTHER_FINGERPRINT, hostname="ws-002")
    listing = client.get("/api/v1/agents", headers=admin).json()["agents"]
    ws1 = [a for a in listing if a["hostname"] == "ws-001"]
    assert [a["id"] for a in ws1] == [third.agent_id]
    assert [p["id"] for p in ws1[0]["predecessors"]] == [second.agent_id, first.agent_id]
    assert ws1[0]["predecessors"][0]["superseded_by"] == third.agent_id


def test_superseded_agent_is_not_silent(client: Any, db: Database, admin: dict[str, str]) -> None:
    """A superseded identity's status is superseded, never silent."""
    token = make_token(db)
    old = _enroll(client, token)
    assert post_events(client, old, [heartbeat(old.agent_id, 1)]).status_code == 200
    _enroll(client, token)
    monitor = client.app.state.monitor
    with db.read() as conn:
        row = conn.execute(sa.select(agents).where(agents.c.id == old.agent_id)).one()
    assert monitor.status_of(dict(row._mapping), row.last_seen_at.replace(year=2100)) \
        == "superseded"
