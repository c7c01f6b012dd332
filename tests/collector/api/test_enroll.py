"""Enrollment: tokens are checked, spent atomically, and turned into agent credentials."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from agent.events import EnrollRequest
from collector.errors import RefusedError
from collector.store import agents as agent_store
from collector.store import tokens
from collector.store.database import Database
from collector.store.tables import agents, enrollment_tokens
from tests.collector.conftest import make_token, snapshot


def _enroll(client: Any, token: str, hostname: str = "ws-001") -> Any:
    return client.post("/api/v1/enroll",
                       json={"token": token, "hostname": hostname, "agent_version": "0.1.0"})


def test_enroll_makes_agent(client: Any, db: Database) -> None:
    """A valid token gives 201 with an agent id, a secret and the token's group."""
    response = _enroll(client, make_token(db, group="court-b"))
    assert response.status_code == 201
    body = response.json()
    assert body["group"] == "court-b" and len(body["secret"]) >= 32
    with db.read() as conn:
        row = conn.execute(sa.select(agents).where(agents.c.id == body["agent_id"])).one()
    assert row.hostname == "ws-001" and row.secret_hash != body["secret"]


def test_unknown_token(client: Any, db: Database) -> None:
    """An unknown token is refused with 401 invalid_token."""
    before = snapshot(db)
    response = _enroll(client, "cgt_not-a-real-token-at-all")
    assert (response.status_code, response.json()["error"]) == (401, "invalid_token")
    assert snapshot(db) == before


def test_expired_token(client: Any, db: Database) -> None:
    """An expired token is refused with 401 token_expired."""
    token = make_token(db, expires_in=timedelta(seconds=-1))
    before = snapshot(db)
    response = _enroll(client, token)
    assert (response.status_code, response.json()["error"]) == (401, "token_expired")
    assert snapshot(db) == before


def test_exhausted_token(client: Any, db: Database) -> None:
    """A single-use token works once, then is refused with 401 token_exhausted."""
    token = make_token(db, uses=1)
    assert _enroll(client, token).status_code == 201
    before = snapshot(db)
    response = _enroll(client, token, "ws-002")
    assert (response.status_code, response.json()["error"]) == (401, "token_exhausted")
    assert snapshot(db) == before


def test_revoked_token(client: Any, db: Database) -> None:
    """A revoked token is refused with 401 token_revoked."""
    token = make_token(db)
    with db.read() as conn:
        token_id = conn.execute(sa.select(enrollment_tokens.c.id)).scalar_one()
    tokens.revoke_token(db, token_id, datetime.now(UTC))
    before = snapshot(db)
    response = _enroll(client, token)
    assert (response.status_code, response.json()["error"]) == (401, "token_revoked")
    assert snapshot(db) == before


def test_invalid_request(client: Any, db: Database) -> None:
    """An enrollment request missing fields is refused with 422 and the fields named."""
    response = client.post("/api/v1/enroll", json={"token": make_token(db)})
    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json()["errors"]} >= {("hostname",)}


def test_single_use_token_race(db: Database) -> None:
    """Two concurrent enrollments with a one-use token: exactly one succeeds."""
    token = make_token(db, uses=1)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(name: str) -> None:
        barrier.wait()
        try:
            agent_store.enroll(
                db, EnrollRequest(token=token, hostname=name, agent_version="1"),
                datetime.now(UTC),
            )
            outcomes.append("ok")
        except RefusedError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=attempt, args=(f"ws-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "token_exhausted"]
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(agents)).scalar_one() == 1
