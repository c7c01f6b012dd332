"""The evidence uploader against a real collector: resume, hash refusal, waiting for the event."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from agent.evidence.artifacts import ArtifactRecord, ArtifactStore
from agent.evidence.uploader import EvidenceUploader, Retry
from agent.pacing import Backoff
from collector.store.database import Database
from collector.store.tables import evidence_artifacts
from tests.collector.conftest import EnrolledAgent, enroll, event, post_events

PCAP = os.urandom(20_000)
CHUNK = 4096


@pytest.fixture
def client(live_url: str) -> Iterator[httpx.Client]:
    """Plain HTTP to the one live collector: the test's requests and the uploader's meet there."""
    with httpx.Client(base_url=live_url, timeout=60) as http:
        yield http


@pytest.fixture
def agent(client: Any, db: Database) -> EnrolledAgent:
    return enroll(client, db)


def _event(client: Any, agent: EnrolledAgent, seq: int = 1) -> str:
    body = event(agent.agent_id, seq, kind="test.flow", evidence={"remote_address": "192.0.2.1"})
    assert post_events(client, agent, [body]).status_code == 200
    return str(body["id"])


def _ready(tmp_path: Path, event_id: str, data: bytes = PCAP) -> tuple[ArtifactStore,
                                                                       ArtifactRecord]:
    store = ArtifactStore(tmp_path / "evidence", 1024 * 1024)
    admitted = store.admit(event_id, 64 * 1024)
    assert admitted is not None
    store.pcap(event_id).write_bytes(data)
    return store, store.finish(admitted, packets=3)


def _upload(live_url: str, agent: EnrolledAgent, store: ArtifactStore,
            record: ArtifactRecord) -> tuple[list[str], list[tuple[str, str]]]:
    """Run one upload; the methods it sent and what it reported."""
    sent: list[str] = []
    reports: list[tuple[str, str]] = []

    async def hook(request: httpx.Request) -> None:
        sent.append(request.method)

    async def run() -> None:
        async with httpx.AsyncClient(base_url=live_url, event_hooks={"request": [hook]}) as http:
            uploader = EvidenceUploader(
                store, f"Bearer {agent.agent_id}:{agent.secret}", CHUNK,
                lambda code, summary, evidence: reports.append((code, summary)),
                Backoff(0.1, 1.0, random.random))
            await uploader.upload(http, record)

    asyncio.run(run())
    return sent, reports


def _row(db: Database) -> Any:
    with db.read() as conn:
        return conn.execute(sa.select(evidence_artifacts)).one()


def test_upload_resumes_at_the_offset_the_collector_holds(
    tmp_path: Path, live_url: str, client: Any, db: Database, agent: EnrolledAgent
) -> None:
    """The collector already holds the first chunk (an upload cut by a restart): the uploader
    declares, sends only the rest, and deletes its copy once the collector verified it."""
    event_id = _event(client, agent)
    store, record = _ready(tmp_path, event_id)
    headers = agent.headers()
    client.post(f"/api/v1/evidence/{event_id}", headers=headers,
                json={"size": record.size, "sha256": record.sha256, "packets": 3})
    client.put(f"/api/v1/evidence/{event_id}", params={"offset": 0},
               content=store.read_chunk(event_id, 0, CHUNK),
               headers={**headers, "Content-Type": "application/octet-stream"})
    sent, reports = _upload(live_url, agent, store, record)
    remaining = -(-(record.size - CHUNK) // CHUNK)
    assert sent == ["POST"] + ["PUT"] * remaining
    assert reports == []
    row = _row(db)
    assert row.state == "complete" and row.sha256 == hashlib.sha256(PCAP).hexdigest()
    assert store.records() == [] and not store.pcap(event_id).exists()


def test_a_pcap_changed_on_disk_is_refused_and_given_up(
    tmp_path: Path, live_url: str, client: Any, db: Database, agent: EnrolledAgent
) -> None:
    """Bytes that no longer hash to what was declared: the collector refuses them at the end,
    the uploader finds its own file changed, deletes it and reports the loss."""
    event_id = _event(client, agent)
    store, record = _ready(tmp_path, event_id)
    with store.pcap(event_id).open("r+b") as handle:
        handle.seek(100)
        handle.write(b"tampered")
    _sent, reports = _upload(live_url, agent, store, record)
    assert [code for code, _ in reports] == ["local_file_changed"]
    assert store.records() == []
    row = _row(db)
    assert row.state == "uploading" and row.received == 0


def test_an_event_not_shipped_yet_makes_the_pcap_wait(
    tmp_path: Path, live_url: str, agent: EnrolledAgent
) -> None:
    """The collector does not hold the event yet: the pcap stays on disk for the next round."""
    store, record = _ready(tmp_path, "01a250ab-0680-72af-92af-6d82c74a807e")
    with pytest.raises(Retry, match="event_not_found"):
        _upload(live_url, agent, store, record)
    assert [r.state for r in store.records()] == ["ready"]
