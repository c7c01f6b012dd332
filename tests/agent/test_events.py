"""The wire contract: what an event and a batch accept and refuse."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from agent.events import (
    MAX_EVIDENCE_BYTES,
    Event,
    EventBatch,
    Finding,
    HeartbeatEvidence,
    Severity,
    TestEvidence,
    uuid7,
)

DEEP_LIST: Any = 1
for _ in range(40):
    DEEP_LIST = [DEEP_LIST]
AGENT = uuid.UUID("0193b3f2-0000-7000-8000-000000000001")


def make_event(**overrides: object) -> Event:
    fields: dict[str, object] = {
        "id": uuid7(),
        "seq": 1,
        "time": datetime(2026, 10, 1, 3, 0, tzinfo=UTC),
        "agent_id": AGENT,
        "host": "ws-101",
        "kind": "agent.test",
        "severity": "low",
        "summary": "测试事件",
        "evidence": {"note": "x"},
    }
    fields.update(overrides)
    return Event.model_validate(fields)


def test_uuid7_has_version_7_and_rfc_variant() -> None:
    """Ids made on the agent are RFC 9562 version-7 UUIDs."""
    value = uuid7()
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_uuid7_increases_within_a_process() -> None:
    """Ids made one after another sort in creation order, even within one millisecond."""
    ids = [uuid7() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_event_refuses_unknown_fields() -> None:
    """A field the contract does not define is an error, not silently dropped."""
    with pytest.raises(ValidationError, match="extra"):
        make_event(colour="red")


def test_event_refuses_naive_time() -> None:
    """Times must carry a zone; a naive time would be read differently on each side."""
    with pytest.raises(ValidationError):
        make_event(time=datetime(2026, 10, 1, 3, 0))


@pytest.mark.parametrize("kind", ["agent", "Agent.Test", "agent..test", "agent.test.", "1x.y"])
def test_event_refuses_kind_that_is_not_dotted_lowercase(kind: str) -> None:
    """Kinds are dotted lowercase names such as outreach.connection."""
    with pytest.raises(ValidationError):
        make_event(kind=kind)


def test_event_checks_evidence_of_known_kinds() -> None:
    """A heartbeat without its required fields is refused."""
    with pytest.raises(ValidationError):
        make_event(kind="agent.heartbeat", evidence={"agent_version": "1"})


def test_event_accepts_evidence_of_unknown_kinds() -> None:
    """A kind this side does not know yet still passes, so newer agents are not refused."""
    event = make_event(kind="outreach.future_signal", evidence={"anything": [1, 2]})
    assert event.typed_evidence() is None


def test_event_refuses_oversized_evidence() -> None:
    """Evidence is bounded so one event cannot carry a whole document."""
    with pytest.raises(ValidationError, match="larger than"):
        make_event(kind="x.y", evidence={"blob": "a" * (MAX_EVIDENCE_BYTES + 1)})


def test_batch_refuses_events_of_another_agent() -> None:
    """An agent can only write as itself: every event must carry the batch's agent id."""
    other = make_event(agent_id=uuid.uuid4())
    with pytest.raises(ValidationError, match="agent_id"):
        EventBatch(agent_id=AGENT, sent_at=datetime.now(UTC), events=[make_event(), other])


def test_batch_refuses_events_without_sequence() -> None:
    """Agent events carry a sequence number so the collector can see gaps."""
    with pytest.raises(ValidationError, match="seq"):
        EventBatch(agent_id=AGENT, sent_at=datetime.now(UTC), events=[make_event(seq=None)])


def test_finding_dumps_an_evidence_model() -> None:
    """Detectors may hand a typed evidence model; it is stored as plain JSON."""
    finding = Finding(
        kind="agent.test", severity=Severity.LOW, summary="测试", evidence=TestEvidence(note="n")
    )
    assert finding.evidence == {"note": "n", "index": 0, "padding": ""}


def test_severity_rank_orders_levels() -> None:
    """Severity ranks run from info to critical, which the spool's drop order relies on."""
    assert [s.rank for s in Severity] == [0, 1, 2, 3, 4]
    assert Severity.from_rank(3) is Severity.HIGH


def test_heartbeat_evidence_round_trips() -> None:
    """A heartbeat's typed evidence survives the wire."""
    evidence = HeartbeatEvidence(
        agent_version="0.1.0",
        uptime_s=1,
        interval_s=60,
        spool_depth=0,
        spool_bytes=0,
        events_dropped=0,
        rss_bytes=1,
        cpu_percent=0.1,
    )
    event = make_event(kind="agent.heartbeat", evidence=evidence.model_dump(mode="json"))
    assert event.typed_evidence() == evidence


@pytest.mark.parametrize("evidence", [
    {"n": 2**64}, {"f": float("nan")}, {"f": float("inf")}, {"s": "a\x00"}, {"s": "\udcb0"},
    {"k\x00": 1}, {"deep": DEEP_LIST},
])
def test_finding_refuses_what_the_store_cannot_hold(evidence: dict[str, Any]) -> None:
    """A detector's finding with an unstorable evidence value fails where it is made, not at
    the collector."""
    with pytest.raises(ValidationError, match="evidence"):
        Finding(kind="site.custom", severity=Severity.LOW, summary="s", evidence=evidence)


def test_event_time_must_stay_within_years_1_to_9999_in_utc() -> None:
    """A time that overflows when converted to UTC is refused; the limits themselves pass."""
    with pytest.raises(ValidationError, match="years 1 to 9999"):
        Finding(kind="site.custom", severity=Severity.LOW, summary="s",
                time=datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-1))))
    Finding(kind="site.custom", severity=Severity.LOW, summary="s",
            time=datetime(9999, 12, 31, 22, 0, tzinfo=timezone(timedelta(hours=-1))))


def test_repeated_seqs_names_later_events_with_another_id() -> None:
    """The same seq under another id is repeated; the same event twice is not."""
    first = make_event(seq=1)
    events = [first, make_event(seq=2), first, make_event(seq=1)]
    batch = EventBatch(agent_id=AGENT, sent_at=datetime.now(UTC), events=events)
    assert batch.repeated_seqs() == [3]
