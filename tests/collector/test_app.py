"""The app's edges: health, metrics, and ErrorBody answers for unknown paths and methods."""

from __future__ import annotations

from typing import Any

from collector.store.database import Database
from tests.collector.conftest import EnrolledAgent, event, post_events


def test_healthz(client: Any) -> None:
    """/healthz answers 200 ok when the database answers."""
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_healthz_without_database(client: Any, db: Database, monkeypatch: Any) -> None:
    """/healthz answers 503 when the database does not."""
    from collector.errors import StoreError

    def broken() -> None:
        raise StoreError("gone")

    monkeypatch.setattr(db, "ping", broken)
    response = client.get("/healthz")
    assert (response.status_code, response.json()["error"]) == (503, "unhealthy")


def test_metrics(client: Any, agent: EnrolledAgent, admin: dict[str, str]) -> None:
    """/metrics counts ingest requests, events and agents by status in Prometheus text."""
    post_events(client, agent, [event(agent.agent_id, 1)])
    text = client.get("/metrics", headers=admin).text
    assert 'courtguard_ingest_requests_total{status="200"} 1.0' in text
    assert 'courtguard_ingest_events_total{result="accepted"} 1.0' in text
    assert 'courtguard_agents{status="online"} 1.0' in text
    assert "courtguard_ingest_batch_seconds_bucket" in text


def test_unknown_path(client: Any) -> None:
    """An unknown path answers 404 with an ErrorBody."""
    response = client.get("/api/v1/nothing")
    assert (response.status_code, response.json()["error"]) == (404, "not_found")


def test_wrong_method(client: Any) -> None:
    """A wrong method answers 405 with an ErrorBody."""
    response = client.get("/api/v1/enroll")
    assert (response.status_code, response.json()["error"]) == (405, "method_not_allowed")
