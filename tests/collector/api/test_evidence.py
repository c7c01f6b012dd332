"""Evidence pcaps: chunked, resumable uploads by the owning agent; downloads audited."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from agent.events import ACCEPTS_HEADER
from collector.settings import CollectorSettings
from collector.store import apikeys
from collector.store.database import Database
from collector.store.evidence import prune_evidence
from collector.store.tables import audit_log, evidence_artifacts, evidence_chunks
from tests.collector.conftest import (
    EnrolledAgent,
    TestClient,
    batch_bytes,
    enroll,
    event,
    post_events,
)

PCAP = os.urandom(10_000)
SHA = hashlib.sha256(PCAP).hexdigest()


def _stored_event(client: TestClient, agent: EnrolledAgent, seq: int = 1, **evidence: Any) -> str:
    body = event(agent.agent_id, seq, kind="test.flow",
                 evidence=evidence or {"remote_address": "203.0.113.10", "interface": "usb0"})
    assert post_events(client, agent, [body]).status_code == 200
    return str(body["id"])


def _post_accepting(client: TestClient, agent: EnrolledAgent, events: list[Any]) -> Any:
    """A batch from an agent that reads capture orders (it names them in ACCEPTS_HEADER)."""
    return client.post("/api/v1/events", content=batch_bytes(agent.agent_id, events),
                       headers={**agent.headers(), ACCEPTS_HEADER: "capture_orders"})


def _declare(client: TestClient, agent: EnrolledAgent, event_id: str, size: int = len(PCAP),
             sha256: str = SHA) -> Any:
    return client.post(f"/api/v1/evidence/{event_id}", headers=agent.headers(),
                       json={"size": size, "sha256": sha256, "packets": 7})


def _put(client: TestClient, agent: EnrolledAgent, event_id: str, offset: int,
         data: bytes) -> Any:
    return client.put(f"/api/v1/evidence/{event_id}", params={"offset": offset}, content=data,
                      headers={**agent.headers(), "Content-Type": "application/octet-stream"})


def _upload(client: TestClient, agent: EnrolledAgent, event_id: str, data: bytes = PCAP,
            chunk: int = 4096) -> Any:
    response = None
    for offset in range(0, len(data), chunk):
        response = _put(client, agent, event_id, offset, data[offset:offset + chunk])
    return response


def test_chunks_make_a_verified_pcap(client: TestClient, agent: EnrolledAgent) -> None:
    """Declared, sent in three chunks: the last answer says complete, the state is kept."""
    event_id = _stored_event(client, agent)
    assert _declare(client, agent, event_id).json() == {
        "offset": 0, "size": len(PCAP), "complete": False}
    last = _upload(client, agent, event_id)
    assert last.status_code == 200, last.text
    assert last.json() == {"offset": len(PCAP), "size": len(PCAP), "complete": True}
    assert _declare(client, agent, event_id).json()["complete"] is True


def test_declaring_again_answers_the_offset_held(client: TestClient, agent: EnrolledAgent) -> None:
    """After a restart the agent declares again and resumes at the bytes the collector holds;
    a chunk at another offset is refused with that offset."""
    event_id = _stored_event(client, agent)
    _declare(client, agent, event_id)
    assert _put(client, agent, event_id, 0, PCAP[:4096]).json()["offset"] == 4096
    assert _declare(client, agent, event_id).json()["offset"] == 4096
    wrong = _put(client, agent, event_id, 0, PCAP[:4096])
    assert wrong.status_code == 409
    assert wrong.json()["error"] == "offset_mismatch"
    assert wrong.json()["errors"] == [{"offset": 4096}]
    done = _put(client, agent, event_id, 4096, PCAP[4096:])
    assert done.json()["complete"] is True


def test_tampered_chunk_is_refused_and_discarded(
    client: TestClient, db: Database, agent: EnrolledAgent
) -> None:
    """Bytes that do not hash to the declared SHA-256 are refused at completion and thrown
    away; the upload starts again from 0 and the right bytes complete it."""
    event_id = _stored_event(client, agent)
    _declare(client, agent, event_id)
    tampered = PCAP[:5000] + bytes([PCAP[5000] ^ 0xFF]) + PCAP[5001:]
    refused = _upload(client, agent, event_id, tampered)
    assert refused.status_code == 422
    assert refused.json()["error"] == "hash_mismatch"
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(evidence_chunks)).scalar() == 0
        row = conn.execute(sa.select(evidence_artifacts)).one()
    assert row.state == "uploading" and row.received == 0
    assert _upload(client, agent, event_id).json()["complete"] is True


def test_size_bounds(client: TestClient, settings: CollectorSettings,
                     agent: EnrolledAgent) -> None:
    """A pcap over evidence_max_bytes is refused at once; so is a chunk past the declared end."""
    event_id = _stored_event(client, agent)
    too_big = _declare(client, agent, event_id, size=settings.evidence_max_bytes + 1)
    assert too_big.status_code == 413 and too_big.json()["error"] == "evidence_too_large"
    _declare(client, agent, event_id)
    past = _put(client, agent, event_id, 0, PCAP + b"x")
    assert past.status_code == 413 and past.json()["error"] == "chunk_past_end"


def test_an_agent_uploads_only_for_its_own_events(
    client: TestClient, db: Database, agent: EnrolledAgent
) -> None:
    """Another enrolled agent cannot declare a pcap for this agent's event; no agent: 401."""
    event_id = _stored_event(client, agent)
    other = enroll(client, db, hostname="ws-002")
    refused = _declare(client, other, event_id)
    assert refused.status_code == 404 and refused.json()["error"] == "event_not_found"
    anonymous = client.post(f"/api/v1/evidence/{event_id}",
                            json={"size": 1, "sha256": SHA, "packets": 0})
    assert anonymous.status_code == 401


def test_download_is_the_pcap_and_is_audited(
    client: TestClient, db: Database, agent: EnrolledAgent, admin: dict[str, str]
) -> None:
    """An admin downloads the exact bytes; each download leaves an audit row; other roles
    are refused and an incomplete pcap is not served."""
    event_id = _stored_event(client, agent)
    _declare(client, agent, event_id)
    url = f"/api/v1/events/{event_id}/evidence"
    assert client.get(url, headers=admin).status_code == 404
    _upload(client, agent, event_id)
    for _ in range(2):
        response = client.get(url, headers=admin)
        assert response.status_code == 200
        assert response.content == PCAP
        assert response.headers["x-content-sha256"] == SHA
    reviewer = apikeys.create_api_key(db, name="rev", role="reviewer", now=datetime.now(UTC))[1]
    assert client.get(url, headers={"Authorization": f"Bearer {reviewer}"}).status_code == 403
    with db.read() as conn:
        rows = conn.execute(sa.select(audit_log).where(
            audit_log.c.action == "evidence.download")).all()
    assert [(r.actor, r.object_id, r.via) for r in rows] == [("test", event_id, "api")] * 2


def test_admin_order_reaches_the_agent_in_its_ingest_answer(
    client: TestClient, agent: EnrolledAgent, admin: dict[str, str]
) -> None:
    """An admin's order rides on the next ingest answer, aimed at the event's outside peer
    and interface, until the agent declares the pcap; it is audited."""
    event_id = _stored_event(client, agent)
    ordered = client.post(f"/api/v1/events/{event_id}/capture", headers=admin,
                          json={"duration_s": 20, "reason": "调查"})
    assert ordered.status_code == 202, ordered.text
    again = client.post(f"/api/v1/events/{event_id}/capture", headers=admin, json={})
    assert again.status_code == 409
    older = post_events(client, agent, [event(agent.agent_id, 2)]).json()
    assert "capture_orders" not in older  # an agent that does not name the field
    answer = _post_accepting(client, agent, [event(agent.agent_id, 3)]).json()
    assert answer["capture_orders"] == [{
        "event_id": event_id, "peer": "203.0.113.10", "interface": "usb0", "duration_s": 20.0,
        "max_packets": 1000, "max_bytes": 8 * 1024 * 1024, "payload": False}]
    _declare(client, agent, event_id)
    answer = _post_accepting(client, agent, [event(agent.agent_id, 4)]).json()
    assert "capture_orders" not in answer


def test_order_on_an_event_without_peer_or_interface_is_refused(
    client: TestClient, agent: EnrolledAgent, admin: dict[str, str]
) -> None:
    """An event naming no outside address or interface has nothing a capture could watch."""
    event_id = _stored_event(client, agent, note="nothing to capture")
    refused = client.post(f"/api/v1/events/{event_id}/capture", headers=admin,
                          json={"duration_s": 20})
    assert refused.status_code == 422
    too_long = _stored_event(client, agent, seq=2)
    assert client.post(f"/api/v1/events/{too_long}/capture", headers=admin,
                       json={"duration_s": 100000}).status_code == 422


def test_retention_drops_old_pcaps_and_stale_uploads(
    client: TestClient, db: Database, agent: EnrolledAgent
) -> None:
    """Pcaps older than the cut-off go with their chunks; a recent one stays."""
    event_id = _stored_event(client, agent)
    _declare(client, agent, event_id)
    _upload(client, agent, event_id)
    now = datetime.now(UTC)
    assert prune_evidence(db, now - timedelta(days=1), now - timedelta(days=7)) == 0
    assert prune_evidence(db, now + timedelta(seconds=1), now - timedelta(days=7)) == 1
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(evidence_chunks)).scalar() == 0
