"""The shipper against a fake collector behind httpx.MockTransport: batching, answers, pacing."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from agent.enrollment import load_credentials
from agent.events import EventBatch, Finding, Severity, TestEvidence
from agent.settings import AgentSettings
from agent.shipper import FULL_LOOK_S, Shipper, retry_after_seconds
from agent.spool import Spool
from agent.testing import FakeCollector, eventually


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def finding(index: int = 0, padding: int = 0, note: str = "") -> Finding:
    evidence = TestEvidence(note=note, index=index, padding="x" * padding)
    return Finding(
        kind="agent.test",
        severity=Severity.LOW,
        summary="测试",
        evidence=evidence.model_dump(mode="json"),
    )


@pytest.fixture
def spool(enrolled: AgentSettings) -> Iterator[Spool]:
    credentials = load_credentials(enrolled.data_dir)
    with Spool(
        enrolled.spool_path, agent_id=credentials.agent_id, host="ws", max_bytes=1 << 26
    ) as opened:
        yield opened


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_shipper(
    enrolled: AgentSettings, spool: Spool, collector: FakeCollector, fake_time: FakeTime
) -> Callable[..., Shipper]:
    def make(transport: Any = None, rng: Callable[[], float] = lambda: 0.5, **overrides: Any):
        settings = enrolled.model_copy(update=overrides)
        return Shipper(
            spool,
            load_credentials(settings.data_dir),
            settings,
            transport=transport or collector.transport(),
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            rng=rng,
        )

    return make


async def rounds(shipper: Shipper, count: int) -> None:
    async with shipper.make_client() as client:
        for _ in range(count):
            await shipper.ship_once(client)


def test_batches_respect_the_event_bound(
    spool: Spool, collector: FakeCollector, make_shipper: Callable[..., Shipper]
) -> None:
    """25 events with batch_max_events 10 go as batches of 10, 10 and 5, in seq order."""
    spool.append([finding(i) for i in range(25)])
    asyncio.run(rounds(make_shipper(batch_max_events=10), 3))
    assert [len(b.events) for b in collector.batches] == [10, 10, 5]
    assert [e.seq for e in collector.events] == list(range(1, 26))


def test_batches_respect_the_byte_bound(
    spool: Spool, collector: FakeCollector, make_shipper: Callable[..., Shipper]
) -> None:
    """No batch's uncompressed body exceeds batch_max_bytes."""
    spool.append([finding(i, padding=4000) for i in range(20)])
    asyncio.run(rounds(make_shipper(batch_max_bytes=16 * 1024), 10))
    sizes = [len(gzip.decompress(r.content)) for r in collector.requests]
    assert len(collector.events) == 20
    assert max(sizes) <= 16 * 1024 + 200  # the batch envelope around the events


def test_body_is_a_gzipped_event_batch_with_credentials(
    enrolled: AgentSettings,
    spool: Spool,
    collector: FakeCollector,
    make_shipper: Callable[..., Shipper],
) -> None:
    """The body is gzipped JSON that validates as an EventBatch, sent with the agent's token."""
    spool.append([finding(i) for i in range(3)])
    asyncio.run(rounds(make_shipper(), 1))
    (request,) = collector.requests
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {collector.agent_id}:{collector.secret}"
    batch = EventBatch.model_validate_json(gzip.decompress(request.content))
    assert batch.agent_id == collector.agent_id and len(batch.events) == 3


def test_ack_deletes_exactly_the_acknowledged_ids(
    spool: Spool, collector: FakeCollector, make_shipper: Callable[..., Shipper]
) -> None:
    """Only the ids the collector lists as accepted or duplicate leave the spool."""
    events = spool.append([finding(i) for i in range(5)])
    collector.then(200, body={"accepted": [str(events[0].id)], "duplicates": [str(events[2].id)]})
    asyncio.run(rounds(make_shipper(), 1))
    assert [row[1] for row in spool.batch(10, 1 << 20)] == [2, 4, 5]


def test_revoked_agent_stops_shipping_and_says_why(
    spool: Spool, collector: FakeCollector, make_shipper: Callable[..., Shipper]
) -> None:
    """401 agent_revoked stops the loop, keeps every event and logs one line saying re-enroll."""
    spool.append([finding(i) for i in range(3)])
    collector.then(401, error="agent_revoked", detail="revoked by admin")
    shipper = make_shipper()
    with capture_logs() as logs:
        asyncio.run(asyncio.wait_for(shipper.run(), 5))
    assert shipper.stopped_reason is not None and "re-enroll" in shipper.stopped_reason
    assert spool.stats().depth == 3
    errors = [entry for entry in logs if entry["log_level"] == "error"]
    assert len(errors) == 1 and "agent_revoked" in errors[0]["event"]
    assert "re-enroll" in errors[0]["event"]
    assert spool.stats().last_ship_result == "stopped"


def test_agent_mismatch_stops_shipping(
    spool: Spool, collector: FakeCollector, make_shipper: Callable[..., Shipper]
) -> None:
    """403 agent_mismatch stops the loop and keeps the events."""
    spool.append([finding()])
    collector.then(403, error="agent_mismatch", detail="events of another agent")
    shipper = make_shipper()
    with capture_logs():
        asyncio.run(asyncio.wait_for(shipper.run(), 5))
    assert shipper.stopped_reason is not None and spool.stats().depth == 1


def test_too_large_batches_are_split(
    spool: Spool, collector: FakeCollector, make_shipper: Callable[..., Shipper]
) -> None:
    """413 makes the shipper retry with smaller batches until every event is accepted."""
    collector.max_batch_events = 3
    spool.append([finding(i) for i in range(10)])
    with capture_logs():
        asyncio.run(rounds(make_shipper(batch_max_events=10), 12))
    assert [e.seq for e in collector.events] == list(range(1, 11))
    assert max(len(b.events) for b in collector.batches if len(b.events) <= 3) <= 3
    assert spool.stats().quarantined == 0


def test_single_event_too_large_is_quarantined(
    spool: Spool, collector: FakeCollector, make_shipper: Callable[..., Shipper]
) -> None:
    """An event refused with 413 even alone is quarantined, and the next one is shipped."""
    spool.append([finding(0), finding(1)])
    collector.then(413, error="body_too_large", detail="too big")
    with capture_logs():
        asyncio.run(rounds(make_shipper(batch_max_events=1), 2))
    assert spool.stats().quarantined == 1
    assert [e.seq for e in collector.events] == [2]


def test_invalid_events_are_quarantined_and_the_rest_shipped(
    spool: Spool, collector: FakeCollector, make_shipper: Callable[..., Shipper]
) -> None:
    """422 quarantines only the events at the indexes named, then ships the others."""
    events = spool.append([finding(i) for i in range(5)])
    errors = [
        {"index": 1, "loc": ["events", 1, "evidence"], "msg": "too big"},
        {"index": 3, "loc": ["events", 3, "kind"], "msg": "unknown"},
    ]
    collector.then(422, error="invalid_batch", detail="2 invalid events", errors=errors)
    with capture_logs():
        asyncio.run(rounds(make_shipper(), 2))
    assert [row[0] for row in spool.quarantined_rows()] == [str(events[1].id), str(events[3].id)]
    assert [e.seq for e in collector.events] == [1, 3, 5]
    assert spool.stats().quarantined == 2 and spool.stats().depth == 0


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(
    status: int,
    spool: Spool,
    collector: FakeCollector,
    make_shipper: Callable[..., Shipper],
    fake_time: FakeTime,
) -> None:
    """429 and 503 with Retry-After wait exactly that long, then the batch goes through."""
    spool.append([finding()])
    collector.then(status, error="busy", detail="slow down", retry_after="7")
    with capture_logs():
        asyncio.run(rounds(make_shipper(backoff_max_s=60), 2))
    assert 7.0 in fake_time.sleeps
    assert len(collector.events) == 1


def test_retry_after_is_capped_at_the_longest_backoff(
    spool: Spool,
    collector: FakeCollector,
    make_shipper: Callable[..., Shipper],
    fake_time: FakeTime,
) -> None:
    """A Retry-After of days waits only backoff_max_s, so a bad answer cannot park the agent."""
    spool.append([finding()])
    collector.then(503, error="busy", detail="slow down", retry_after="864000")
    shipper = make_shipper()
    with capture_logs():
        asyncio.run(rounds(shipper, 2))
    assert max(fake_time.sleeps) == shipper.settings.backoff_max_s
    assert len(collector.events) == 1


def test_retry_after_accepts_an_http_date() -> None:
    """Retry-After as an HTTP date becomes the seconds until then."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(header, now) == 30
    assert retry_after_seconds("12") == 12
    assert retry_after_seconds("soon") is None


def test_server_errors_back_off_with_bounded_full_jitter(
    spool: Spool,
    collector: FakeCollector,
    make_shipper: Callable[..., Shipper],
    fake_time: FakeTime,
) -> None:
    """Repeated 500s wait uniform(0, min(cap, initial * 2**n)), then the batch goes through."""
    spool.append([finding()])
    for _ in range(8):
        collector.then(500, error="internal", detail="oops")
    with capture_logs():
        asyncio.run(rounds(make_shipper(rng=lambda: 1.0, backoff_initial_s=1, backoff_max_s=20), 9))
    assert fake_time.sleeps == [1, 2, 4, 8, 16, 20, 20, 20]
    assert len(collector.events) == 1


def test_repeated_server_error_on_one_event_quarantines_it_when_the_collector_is_healthy(
    spool: Spool, collector: FakeCollector, make_shipper: Callable[..., Shipper]
) -> None:
    """A 500 twice in a row on one event, with /healthz answering 200, quarantines the event
    and reports why; the next event ships."""
    spool.append([finding(0), finding(1)])
    collector.healthz = 200
    collector.then(500, error="internal_error", detail="oops").then(
        500, error="internal_error", detail="oops")
    shipper = make_shipper(batch_max_events=1)
    with capture_logs():
        asyncio.run(rounds(shipper, 3))
    (reason,) = [row[1] for row in spool.quarantined_rows()]
    assert reason.startswith("collector_failed") and "500" in reason
    assert [e.seq for e in collector.events] == [2]


def test_repeated_server_errors_halve_a_batch_down_to_the_failing_event(
    spool: Spool, collector: FakeCollector, make_shipper: Callable[..., Shipper]
) -> None:
    """A batch failing with 500 repeatedly is halved until the event the collector fails on
    is alone; only that event is quarantined, and full batches resume after it."""
    events = spool.append([finding(i) for i in range(8)])
    collector.healthz = 200
    poisoned = events[5].id
    original = collector.handle

    def fail_on_poison(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/events" and str(poisoned).encode() in gzip.decompress(
                request.content):
            collector.requests.append(request)
            return httpx.Response(500, json={"error": "internal_error", "detail": "oops"})
        return original(request)

    shipper = make_shipper(transport=httpx.MockTransport(fail_on_poison), batch_max_events=8)
    with capture_logs():
        asyncio.run(rounds(shipper, 20))
    assert [row[0] for row in spool.quarantined_rows()] == [str(poisoned)]
    assert sorted(e.seq for e in collector.events) == [1, 2, 3, 4, 5, 7, 8]
    assert shipper._limit == 8  # the split is over once the event is set aside


@pytest.mark.parametrize("healthz", [None, 503])
def test_server_errors_quarantine_nothing_while_the_collector_is_unhealthy(
    healthz: int | None, spool: Spool, collector: FakeCollector,
    make_shipper: Callable[..., Shipper],
) -> None:
    """500s while /healthz is missing or 503 keep the event and retry; it ships afterwards."""
    spool.append([finding()])
    collector.healthz = healthz
    for _ in range(6):
        collector.then(500, error="internal_error", detail="oops")
    with capture_logs():
        asyncio.run(rounds(make_shipper(), 7))
    assert spool.stats().quarantined == 0
    assert len(collector.events) == 1


def test_unavailable_is_never_split_or_quarantined(
    spool: Spool, collector: FakeCollector, make_shipper: Callable[..., Shipper]
) -> None:
    """503 store_unavailable, however often and with a healthy /healthz, keeps whole batches."""
    spool.append([finding(i) for i in range(4)])
    collector.healthz = 200
    for _ in range(6):
        collector.then(503, error="store_unavailable", detail="down", retry_after="1")
    with capture_logs():
        asyncio.run(rounds(make_shipper(), 7))
    assert [len(b.events) for b in collector.batches] == [4] * 7
    assert spool.stats().quarantined == 0 and len(collector.events) == 4


def test_connection_errors_back_off(
    spool: Spool, make_shipper: Callable[..., Shipper], fake_time: FakeTime
) -> None:
    """A collector that cannot be reached leaves the events in place and backs off."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    spool.append([finding()])
    with capture_logs():
        asyncio.run(rounds(make_shipper(transport=httpx.MockTransport(refuse)), 3))
    assert len(fake_time.sleeps) == 3 and spool.stats().depth == 1
    assert "cannot reach" in (spool.stats().last_ship_error or "")


def test_drain_rate_is_bounded(
    spool: Spool,
    collector: FakeCollector,
    make_shipper: Callable[..., Shipper],
    fake_time: FakeTime,
) -> None:
    """1000 events at drain_rate_eps 100 take at least (1000 - one burst) / 100 seconds."""
    spool.append([finding(i) for i in range(1000)])
    asyncio.run(rounds(make_shipper(batch_max_events=100, drain_rate_eps=100), 10))
    assert len(collector.events) == 1000
    assert sum(fake_time.sleeps) >= (1000 - 100) / 100 - 1e-6


def test_backlog_after_an_outage_waits_a_random_start_jitter(
    spool: Spool,
    collector: FakeCollector,
    make_shipper: Callable[..., Shipper],
    fake_time: FakeTime,
) -> None:
    """A backlog larger than one batch waits rng * drain_start_jitter_s before draining."""
    spool.append([finding(i) for i in range(30)])
    shipper = make_shipper(batch_max_events=10, drain_start_jitter_s=4, rng=lambda: 0.25)
    asyncio.run(rounds(shipper, 3))
    assert fake_time.sleeps[0] == 1.0
    assert len(collector.events) == 30


def test_partial_batch_waits_for_its_age(
    enrolled: AgentSettings, spool: Spool, collector: FakeCollector
) -> None:
    """A lone event is held for batch_max_age_s in case more arrive, then sent."""
    settings = enrolled.model_copy(update={"batch_max_age_s": 0.4})
    shipper = Shipper(
        spool, load_credentials(settings.data_dir), settings, transport=collector.transport()
    )

    async def scenario() -> float:
        spool.append([finding()])
        started = time.monotonic()
        task = asyncio.create_task(shipper.run())
        await eventually(lambda: collector.events)
        task.cancel()
        return collector.arrival_times[0] - started

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) >= 0.4


def test_full_batch_goes_without_waiting(
    enrolled: AgentSettings, spool: Spool, collector: FakeCollector
) -> None:
    """A full batch is sent at once, even with a long batch_max_age_s."""
    settings = enrolled.model_copy(update={"batch_max_age_s": 30, "batch_max_events": 5})
    shipper = Shipper(
        spool, load_credentials(settings.data_dir), settings, transport=collector.transport()
    )

    async def scenario() -> None:
        spool.append([finding(i) for i in range(5)])
        task = asyncio.create_task(shipper.run())
        await eventually(lambda: collector.events)
        task.cancel()

    asyncio.run(asyncio.wait_for(scenario(), 5))


def test_wake_ships_promptly_despite_a_slow_poll(
    enrolled: AgentSettings, spool: Spool, collector: FakeCollector
) -> None:
    """wake() makes an idle shipper look at the spool at once, not at the next poll."""
    settings = enrolled.model_copy(update={"spool_poll_s": 30})
    shipper = Shipper(
        spool, load_credentials(settings.data_dir), settings, transport=collector.transport()
    )

    async def scenario() -> None:
        task = asyncio.create_task(shipper.run())
        await asyncio.sleep(0.1)
        spool.append([finding()])
        shipper.wake()
        await eventually(lambda: collector.events)
        task.cancel()

    asyncio.run(asyncio.wait_for(scenario(), 5))


def test_poll_finds_events_other_processes_wrote(
    enrolled: AgentSettings, spool: Spool, collector: FakeCollector
) -> None:
    """Events written without a wake (by emit-test, say) are found by the periodic poll."""
    shipper = Shipper(
        spool, load_credentials(enrolled.data_dir), enrolled, transport=collector.transport()
    )

    async def scenario() -> None:
        task = asyncio.create_task(shipper.run())
        await asyncio.sleep(0.1)
        spool.append([finding()])
        await eventually(lambda: collector.events)
        task.cancel()

    asyncio.run(asyncio.wait_for(scenario(), 5))


def test_inotify_wakes_an_idle_shipper_when_another_process_writes(
    enrolled: AgentSettings, spool: Spool, collector: FakeCollector
) -> None:
    """With the spool watched the idle shipper has no short poll: a write without a wake
    (emit-test's, from another process) is found through inotify, not the 30 s look."""
    settings = enrolled.model_copy(update={"spool_poll_s": 60})
    shipper = Shipper(
        spool, load_credentials(settings.data_dir), settings, transport=collector.transport()
    )

    async def scenario() -> None:
        task = asyncio.create_task(shipper.run())
        await eventually(lambda: shipper.spool_reads >= 1 and shipper.spool_watched)
        credentials = load_credentials(settings.data_dir)
        with Spool(  # a second connection, as emit-test opens one
            spool.path, agent_id=credentials.agent_id, host="ws", max_bytes=1 << 26
        ) as writer:
            writer.append([finding()])
        await eventually(lambda: collector.events, within_s=FULL_LOOK_S / 3)
        task.cancel()

    asyncio.run(asyncio.wait_for(scenario(), FULL_LOOK_S / 2))


def test_an_idle_shipper_reads_the_spool_only_when_its_files_change(
    enrolled: AgentSettings, spool: Spool, collector: FakeCollector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where inotify is unavailable the idle poll costs a stat while the spool's files stay
    unchanged; a write is still found."""
    import agent.file_watch

    monkeypatch.setattr(agent.file_watch, "watch_files", lambda paths, changed: None)
    shipper = Shipper(
        spool, load_credentials(enrolled.data_dir), enrolled, transport=collector.transport()
    )
    looks: list[bool] = []
    still_empty = shipper._still_empty

    def counted() -> bool:
        looks.append(still_empty())
        return looks[-1]

    shipper._still_empty = counted  # type: ignore[method-assign]  # counts the idle polls

    async def scenario() -> None:
        task = asyncio.create_task(shipper.run())
        await eventually(lambda: looks.count(True) >= 10, within_s=60)
        assert shipper.spool_reads == 1
        spool.append([finding()])  # as another process would: no wake
        await eventually(lambda: collector.events)
        task.cancel()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_flush_empties_the_spool(
    enrolled: AgentSettings, spool: Spool, collector: FakeCollector
) -> None:
    """flush sends what waits without the age delay and reports success."""
    settings = enrolled.model_copy(update={"batch_max_age_s": 30})
    shipper = Shipper(
        spool, load_credentials(settings.data_dir), settings, transport=collector.transport()
    )

    async def scenario() -> bool:
        task = asyncio.create_task(shipper.run())
        spool.append([finding()])
        flushed = await shipper.flush(3)
        task.cancel()
        return flushed

    assert asyncio.run(scenario()) is True
    assert len(collector.events) == 1


def test_a_network_change_ends_the_back_off_wait(
    enrolled: AgentSettings, spool: Spool, collector: FakeCollector
) -> None:
    """After a failed send, a route change retries at once instead of sleeping the back-off."""
    collector.reachable = False
    settings = enrolled.model_copy(update={"backoff_initial_s": 3600, "backoff_max_s": 3600})
    shipper = Shipper(spool, load_credentials(settings.data_dir), settings,
                      transport=collector.transport(), rng=lambda: 1.0)
    spool.append([finding()], None)

    async def scenario() -> None:
        async with shipper.make_client() as client:
            round_ = asyncio.ensure_future(shipper.ship_once(client))
            await eventually(lambda: shipper.backoff.attempt == 1)
            shipper.network_changed()
            await asyncio.wait_for(round_, 60)  # far below the hour of back-off

    asyncio.run(scenario())


def test_an_answer_with_a_field_this_agent_does_not_know_still_acknowledges() -> None:
    """A newer collector's extra hint never stops the spool from draining."""
    import uuid

    from agent.events import IngestResult

    event_id = uuid.uuid4()
    body = f'{{"accepted": ["{event_id}"], "duplicates": [], "hint_from_the_future": 1}}'
    assert IngestResult.model_validate_json(body).accepted == [event_id]
