"""Every refused event batch answers with its status and ErrorBody code, and changes nothing."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from collector.store import agents as agent_store
from collector.store.database import Database, make_engine
from tests.collector.conftest import (
    EnrolledAgent,
    batch_bytes,
    enroll,
    event,
    snapshot,
)


def _refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == code
    assert body["detail"]
    return body


@pytest.fixture
def before(db: Database, agent: EnrolledAgent) -> dict[str, Any]:
    return snapshot(db)


def test_missing_credentials(client: Any, db: Database, agent: EnrolledAgent,
                             before: dict[str, Any]) -> None:
    """A batch without Authorization is refused with 401 missing_credentials."""
    response = client.post("/api/v1/events", content=batch_bytes(agent.agent_id, [
        event(agent.agent_id, 1)]), headers={"Content-Type": "application/json"})
    _refused(response, 401, "missing_credentials")
    assert snapshot(db) == before


def test_wrong_secret(client: Any, db: Database, agent: EnrolledAgent,
                      before: dict[str, Any]) -> None:
    """A batch with a wrong secret is refused with 401 invalid_credentials."""
    impostor = EnrolledAgent(agent.agent_id, "x" * 43, agent.hostname)
    response = client.post("/api/v1/events", content=batch_bytes(agent.agent_id, [
        event(agent.agent_id, 1)]), headers=impostor.headers())
    _refused(response, 401, "invalid_credentials")
    assert snapshot(db) == before


def test_revoked_agent(client: Any, db: Database, agent: EnrolledAgent) -> None:
    """A revoked agent's batch is refused with 401 agent_revoked, telling it to re-enroll."""
    agent_store.revoke(db, agent.agent_id, "laptop stolen", datetime.now(UTC))
    before = snapshot(db)
    response = client.post("/api/v1/events", content=batch_bytes(agent.agent_id, [
        event(agent.agent_id, 1)]), headers=agent.headers())
    body = _refused(response, 401, "agent_revoked")
    assert "re-enrolled" in body["detail"]
    assert snapshot(db) == before


def test_wrong_content_type(client: Any, db: Database, agent: EnrolledAgent,
                            before: dict[str, Any]) -> None:
    """A body that is not declared application/json is refused with 415."""
    headers = {**agent.headers(), "Content-Type": "text/plain"}
    response = client.post("/api/v1/events", content=batch_bytes(agent.agent_id, [
        event(agent.agent_id, 1)]), headers=headers)
    _refused(response, 415, "unsupported_media_type")
    assert snapshot(db) == before


def test_malformed_json(client: Any, db: Database, agent: EnrolledAgent,
                        before: dict[str, Any]) -> None:
    """A body that is not JSON is refused with 400 malformed_json."""
    response = client.post("/api/v1/events", content=b'{"agent_id": ', headers=agent.headers())
    _refused(response, 400, "malformed_json")
    assert snapshot(db) == before


def test_bad_gzip(client: Any, db: Database, agent: EnrolledAgent,
                  before: dict[str, Any]) -> None:
    """A body declared gzip that is not gzip is refused with 400 bad_encoding."""
    response = client.post("/api/v1/events", content=b"not gzip at all",
                           headers=agent.headers(gzip_body=True))
    _refused(response, 400, "bad_encoding")
    assert snapshot(db) == before


def _gzip_of_zeros(total: int) -> bytes:
    squeezer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [squeezer.compress(block) for _ in range(total >> 20)]
    parts.append(squeezer.flush())
    return b"".join(parts)


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return _gzip_of_zeros(1 << 30)


def test_gzip_bomb(client: Any, db: Database, agent: EnrolledAgent,
                   before: dict[str, Any], gzip_bomb: bytes) -> None:
    """1 GB of zeros in a ~1 MB gzip body stops at max_decompressed_bytes with 413."""
    assert len(gzip_bomb) < 2 << 20
    response = client.post("/api/v1/events", content=gzip_bomb,
                           headers=agent.headers(gzip_body=True))
    _refused(response, 413, "body_too_large")
    assert snapshot(db) == before


def test_huge_body_refused_early(live_url: str, db: Database, agent: EnrolledAgent,
                                 before: dict[str, Any]) -> None:
    """A streamed 100 MB body is refused with 413 long before it has all been sent."""
    sent = 0

    def stream() -> Iterator[bytes]:
        nonlocal sent
        chunk = b" " * (64 * 1024)
        while sent < 100 * 1024 * 1024:
            sent += len(chunk)
            yield chunk

    with httpx.Client(base_url=live_url, timeout=30) as http:
        response = http.post("/api/v1/events", content=stream(), headers=agent.headers())
    _refused(response, 413, "body_too_large")
    assert sent < 40 * 1024 * 1024
    assert snapshot(db) == before


def test_declared_huge_body_refused_unread(client: Any, db: Database, agent: EnrolledAgent,
                                           before: dict[str, Any]) -> None:
    """A Content-Length over max_body_bytes is refused before the body is read."""
    headers = {**agent.headers(), "Content-Length": str(100 * 1024 * 1024)}
    response = client.post("/api/v1/events", content=b"{}", headers=headers)
    _refused(response, 413, "body_too_large")
    assert snapshot(db) == before


def test_batch_of_100k_events(client: Any, db: Database, agent: EnrolledAgent,
                              before: dict[str, Any]) -> None:
    """A batch of 100,000 events is refused with 413 batch_too_large."""
    template = event(agent.agent_id, 1)
    events = [{**template, "id": str(uuid.uuid4()), "seq": i + 1} for i in range(100_000)]
    body = batch_bytes(agent.agent_id, events, compress=True)
    response = client.post("/api/v1/events", content=body, headers=agent.headers(gzip_body=True))
    _refused(response, 413, "batch_too_large")
    assert snapshot(db) == before


def test_unknown_field(client: Any, db: Database, agent: EnrolledAgent,
                       before: dict[str, Any]) -> None:
    """An event with a field the contract lacks is refused with 422, naming its index."""
    events = [event(agent.agent_id, 1), event(agent.agent_id, 2, colour="red")]
    response = client.post("/api/v1/events", content=batch_bytes(agent.agent_id, events),
                           headers=agent.headers())
    body = _refused(response, 422, "invalid_batch")
    expected = {"index": 1, "loc": ["colour"], "msg": "Extra inputs are not permitted"}
    assert expected in body["errors"]
    assert snapshot(db) == before


def test_wrong_type(client: Any, db: Database, agent: EnrolledAgent,
                    before: dict[str, Any]) -> None:
    """An event whose seq is not an integer is refused with 422 invalid_batch."""
    events = [event(agent.agent_id, 1), {**event(agent.agent_id, 2), "seq": "two"}]
    response = client.post("/api/v1/events", content=batch_bytes(agent.agent_id, events),
                           headers=agent.headers())
    body = _refused(response, 422, "invalid_batch")
    assert [e["index"] for e in body["errors"]] == [1]
    assert body["errors"][0]["loc"] == ["seq"]
    assert snapshot(db) == before


def test_batch_for_another_agent(client: Any, db: Database, agent: EnrolledAgent,
                                 before: dict[str, Any]) -> None:
    """A batch naming another agent is refused with 403 agent_mismatch."""
    other = enroll(client, db, hostname="ws-002")
    before = snapshot(db)
    body = batch_bytes(other.agent_id, [event(other.agent_id, 1)])
    response = client.post("/api/v1/events", content=body, headers=agent.headers())
    _refused(response, 403, "agent_mismatch")
    assert snapshot(db) == before


def test_event_for_another_agent(client: Any, db: Database, agent: EnrolledAgent,
                                 before: dict[str, Any]) -> None:
    """One event naming another agent inside an otherwise own batch is refused with 403."""
    events = [event(agent.agent_id, 1), event(str(uuid.uuid4()), 2)]
    response = client.post("/api/v1/events", content=batch_bytes(agent.agent_id, events),
                           headers=agent.headers())
    _refused(response, 403, "agent_mismatch")
    assert snapshot(db) == before


def test_overloaded(client: Any, db: Database, agent: EnrolledAgent,
                    before: dict[str, Any]) -> None:
    """Over ingest_concurrency, a batch is refused with 503 overloaded and Retry-After."""
    ctx = client.app.state.courtguard
    ctx.ingest_in_flight = ctx.settings.ingest_concurrency
    try:
        response = client.post("/api/v1/events", content=batch_bytes(agent.agent_id, [
            event(agent.agent_id, 1)]), headers=agent.headers())
    finally:
        ctx.ingest_in_flight = 0
    _refused(response, 503, "overloaded")
    assert int(response.headers["Retry-After"]) >= 1
    assert snapshot(db) == before


def test_empty_batch(client: Any, db: Database, agent: EnrolledAgent,
                     before: dict[str, Any]) -> None:
    """A batch without events is refused with 422 invalid_batch."""
    body = orjson.dumps({"agent_id": agent.agent_id, "sent_at": datetime.now(UTC).isoformat(),
                         "events": []})
    _refused(client.post("/api/v1/events", content=body, headers=agent.headers()),
             422, "invalid_batch")
    assert snapshot(db) == before


def test_database_down_is_503_not_500(client: Any, db: Database, agent: EnrolledAgent,
                                      database_url: str, tmp_path: Any) -> None:
    """A store that does not answer is 503 store_unavailable with Retry-After, so agents keep
    their events and retry instead of hunting for a poisoned one."""
    if database_url.startswith("sqlite"):
        unreachable = f"sqlite:///{tmp_path / 'missing' / 'dir'}/"
    else:
        unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2"
    ctx = client.app.state.courtguard
    ctx.db = Database(make_engine(unreachable))
    try:
        response = client.post("/api/v1/events", content=batch_bytes(agent.agent_id, [
            event(agent.agent_id, 1)]), headers=agent.headers())
    finally:
        ctx.db.dispose()
        ctx.db = db
    _refused(response, 503, "store_unavailable")
    assert int(response.headers["Retry-After"]) >= 1



_NOW = "2026-12-07T10:00:00+00:00"
#: Evidence each collector-made kind's own model accepts, so only the kind is wrong.
_CONCLUDED = {
    "agent.silent": {"last_seen": _NOW, "interval_s": 30.0, "missed_heartbeats": 3},
    "account.shared": {"account": "wb_zhang", "hosts": ["ws-001", "ws-002"],
                       "overlap_s": 900.0, "since": _NOW},
    "account.first_seen": {"account": "wb_zhang", "host": "ws-001", "what": "login",
                           "source_event": "0193a0c0-0000-7000-8000-000000000001"},
    "account.daily_score": {"account": "wb_zhang", "day": "2026-12-07", "score": 40,
                            "contributions": {"accounts.first-seen-host": 40}},
    "collector.policy_rejected": {"reason_code": "bad_signature", "reason": "forged"},
    "collector.anything": {"note": "forged"},
    "agent.superseded": {"previous_agent_id": "0193a0c0-0000-7000-8000-000000000001"},
    "agent.host_conflict": {"existing_agent_id": "0193a0c0-0000-7000-8000-000000000001"},
}


@pytest.mark.parametrize("kind", sorted(_CONCLUDED))
def test_collector_made_kind(client: Any, db: Database, agent: EnrolledAgent,
                             before: dict[str, Any], kind: str) -> None:
    """A kind only the collector concludes is refused by index: an agent cannot forge it."""
    response = client.post("/api/v1/events", content=batch_bytes(agent.agent_id, [
        event(agent.agent_id, 1),
        event(agent.agent_id, 2, kind=kind, evidence=_CONCLUDED[kind])]),
        headers=agent.headers())
    body = _refused(response, 422, "invalid_batch")
    assert [(item["index"], item["loc"]) for item in body["errors"]] == [(1, ["kind"])]
    assert snapshot(db) == before
