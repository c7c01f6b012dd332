"""Ingest over real HTTPS: crash safety and refusal of bad input, against a real collector."""

from __future__ import annotations

import gzip
import json
import signal
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Agent, Collector, agent_headers, batch_body, synthetic_events

pytestmark = pytest.mark.e2e


@pytest.fixture
def credentials(make_agent: Callable[..., Agent]) -> dict[str, Any]:
    """An enrolled (not running) agent's credentials, to post batches directly."""
    agent = make_agent()
    return dict(json.loads((agent.data_dir / "credentials.json").read_text()))


def store_snapshot(collector: Collector) -> tuple[int, int, list[Any]]:
    events = collector.query("SELECT COUNT(*) FROM events")[0][0]
    gaps = collector.query("SELECT COUNT(*) FROM sequence_gaps")[0][0]
    agents = collector.query("SELECT id, max_seq, last_seen_at FROM agents ORDER BY id")
    return events, gaps, [tuple(row) for row in agents]


def test_collector_sigkill_mid_ingest_keeps_every_acknowledged_event(
    collector: Collector, credentials: dict[str, Any]
) -> None:
    """Every event the collector acknowledged before a SIGKILL is in the store after restart."""
    agent_id = credentials["agent_id"]
    acknowledged: set[str] = set()
    stop = threading.Event()

    def post_batches() -> None:
        seq = 1
        with collector.http(timeout=10) as client:
            while not stop.is_set():
                events = synthetic_events(agent_id, seq, 500)
                try:
                    response = client.post(
                        "/api/v1/events",
                        content=batch_body(agent_id, events),
                        headers=agent_headers(credentials),
                    )
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    acknowledged.update(response.json()["accepted"])
                    seq += 500

    sender = threading.Thread(target=post_batches)
    sender.start()
    try:
        while len(acknowledged) < 5000:
            assert sender.is_alive(), "the sender stopped before the kill"
            threading.Event().wait(0.01)
        collector.stop(signal.SIGKILL)
    finally:
        stop.set()
        sender.join(timeout=30)
    collector.start()
    stored = {row.id for row in collector.query("SELECT id FROM events WHERE kind = 'agent.test'")}
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged events were lost"


def _post(
    collector: Collector, body: bytes | Iterator[bytes], headers: dict[str, str]
) -> httpx.Response:
    with collector.http(timeout=120) as client:
        return client.post("/api/v1/events", content=body, headers=headers)


def _assert_refused(
    collector: Collector,
    response: httpx.Response,
    status: int,
    error: str,
    before: tuple[int, int, list[Any]],
) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.json()["detail"]
    assert store_snapshot(collector) == before


def test_malformed_json_is_400(collector: Collector, credentials: dict[str, Any]) -> None:
    """A body that is not JSON gets 400 malformed_json and changes nothing."""
    before = store_snapshot(collector)
    response = _post(collector, gzip.compress(b'{"agent_id": '), agent_headers(credentials))
    _assert_refused(collector, response, 400, "malformed_json", before)


def test_wrong_content_type_is_415(collector: Collector, credentials: dict[str, Any]) -> None:
    """A body that is not declared as JSON gets 415."""
    before = store_snapshot(collector)
    headers = agent_headers(credentials) | {"Content-Type": "text/plain"}
    events = synthetic_events(credentials["agent_id"], 1, 1)
    response = _post(collector, batch_body(credentials["agent_id"], events), headers)
    _assert_refused(collector, response, 415, "unsupported_media_type", before)


def test_gzip_bomb_is_413(collector: Collector, credentials: dict[str, Any]) -> None:
    """A small gzip body that inflates past the limit is stopped while inflating."""
    before = store_snapshot(collector)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    bomb = b"".join(compressor.compress(chunk) for _ in range(1024)) + compressor.flush()
    assert len(bomb) < 2 * 1024 * 1024
    response = _post(collector, bomb, agent_headers(credentials))
    _assert_refused(collector, response, 413, "body_too_large", before)


def test_hundred_megabyte_body_is_413(collector: Collector, credentials: dict[str, Any]) -> None:
    """A 100 MB body is refused without the collector reading all of it into memory."""
    before = store_snapshot(collector)

    def stream() -> Iterator[bytes]:
        block = b" " * (1 << 20)
        for _ in range(100):
            yield block

    try:
        response = _post(collector, stream(), agent_headers(credentials, gzip_body=False))
    except httpx.WriteError:
        pytest.fail("the collector closed the connection without an answer")
    _assert_refused(collector, response, 413, "body_too_large", before)


def test_batch_of_100k_events_is_413(collector: Collector, credentials: dict[str, Any]) -> None:
    """A batch with far more events than allowed is refused as a whole."""
    before = store_snapshot(collector)
    events = synthetic_events(credentials["agent_id"], 1, 100_000)
    response = _post(
        collector, batch_body(credentials["agent_id"], events), agent_headers(credentials)
    )
    _assert_refused(collector, response, 413, "batch_too_large", before)


@pytest.mark.parametrize(
    ("mutate", "what"),
    [
        (lambda e: e.update(colour="red"), "an unknown field"),
        (lambda e: e.update(seq="seven"), "a wrong type"),
        (lambda e: e.update(severity="apocalyptic"), "an unknown severity"),
        (lambda e: e.pop("summary"), "a missing field"),
    ],
)
def test_invalid_event_is_422(
    collector: Collector,
    credentials: dict[str, Any],
    mutate: Callable[[dict[str, Any]], None],
    what: str,
) -> None:
    """A batch with one invalid event is refused with 422 naming the event."""
    before = store_snapshot(collector)
    events = synthetic_events(credentials["agent_id"], 1, 3)
    mutate(events[1])
    response = _post(
        collector, batch_body(credentials["agent_id"], events), agent_headers(credentials)
    )
    _assert_refused(collector, response, 422, "invalid_batch", before)
    assert any(item.get("index") == 1 for item in response.json()["errors"]), what


def test_missing_credentials_is_401(collector: Collector, credentials: dict[str, Any]) -> None:
    """A batch without credentials is refused."""
    before = store_snapshot(collector)
    headers = agent_headers(credentials)
    del headers["Authorization"]
    events = synthetic_events(credentials["agent_id"], 1, 1)
    response = _post(collector, batch_body(credentials["agent_id"], events), headers)
    _assert_refused(collector, response, 401, "missing_credentials", before)


def test_wrong_secret_is_401(collector: Collector, credentials: dict[str, Any]) -> None:
    """A batch with a wrong secret is refused."""
    before = store_snapshot(collector)
    forged = credentials | {"secret": "x" * 43}
    events = synthetic_events(credentials["agent_id"], 1, 1)
    response = _post(collector, batch_body(credentials["agent_id"], events), agent_headers(forged))
    _assert_refused(collector, response, 401, "invalid_credentials", before)


def test_revoked_agent_is_401(collector: Collector, credentials: dict[str, Any]) -> None:
    """A revoked agent's batches are refused with a reason it can log."""
    collector.cli("agent", "revoke", credentials["agent_id"])
    before = store_snapshot(collector)
    events = synthetic_events(credentials["agent_id"], 1, 1)
    response = _post(
        collector, batch_body(credentials["agent_id"], events), agent_headers(credentials)
    )
    _assert_refused(collector, response, 401, "agent_revoked", before)


def test_batch_claiming_another_agent_is_403(
    collector: Collector, make_agent: Callable[..., Agent], credentials: dict[str, Any]
) -> None:
    """An agent cannot write events under another agent's id, and the attempt is logged."""
    victim = make_agent("victim")
    before = store_snapshot(collector)
    events = synthetic_events(victim.agent_id, 1, 1)
    response = _post(collector, batch_body(victim.agent_id, events), agent_headers(credentials))
    _assert_refused(collector, response, 403, "agent_mismatch", before)
    assert victim.agent_id in collector.log()


def test_duplicate_batch_is_acknowledged_without_new_rows(
    collector: Collector, credentials: dict[str, Any]
) -> None:
    """Sending the same batch twice stores it once and acknowledges both times."""
    events = synthetic_events(credentials["agent_id"], 1, 20)
    body = batch_body(credentials["agent_id"], events)
    first = _post(collector, body, agent_headers(credentials)).json()
    second = _post(collector, body, agent_headers(credentials)).json()
    assert len(first["accepted"]) == 20 and first["duplicates"] == []
    assert second["accepted"] == [] and len(second["duplicates"]) == 20
    assert collector.query("SELECT COUNT(*) FROM events WHERE kind = 'agent.test'")[0][0] == 20
