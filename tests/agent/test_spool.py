"""The spool: durable, sequenced, bounded by bytes with drops by severity, and reported."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.errors import SpoolError
from agent.events import Event, Finding, Severity, TestEvidence
from agent.spool import Spool

AGENT = uuid.UUID("01900000-0000-7000-8000-000000000001")


def finding(severity: Severity = Severity.LOW, index: int = 0, padding: int = 0) -> Finding:
    evidence = TestEvidence(index=index, padding="x" * padding).model_dump(mode="json")
    return Finding(kind="agent.test", severity=severity, summary="测试", evidence=evidence)


@pytest.fixture
def open_spool(tmp_path: Path) -> Iterator[Callable[..., Spool]]:
    opened: list[Spool] = []

    def open_(max_bytes: int = 1024 * 1024, agent_id: uuid.UUID = AGENT, **kw: object) -> Spool:
        spool = Spool(
            tmp_path / "spool.db", agent_id=agent_id, host="ws", max_bytes=max_bytes, **kw
        )
        opened.append(spool)
        return spool

    yield open_
    for spool in opened:
        spool.close()  # closing twice is harmless


def kinds_and_severities(spool: Spool) -> list[tuple[str, str, int]]:
    rows = spool.batch(100_000, 1 << 40)
    return [
        (
            json.loads(body)["kind"],
            json.loads(body)["severity"],
            json.loads(body)["evidence"].get("index", -1),
        )
        for _, _, body in rows
    ]


def test_events_survive_reopen(open_spool: Callable[..., Spool]) -> None:
    """Events appended before close are all there, byte for byte, after reopening."""
    spool = open_spool()
    events = spool.append([finding(index=i) for i in range(3)])
    before = spool.batch(10, 1 << 20)
    spool.close()
    after = open_spool().batch(10, 1 << 20)
    assert after == before
    assert [row[0] for row in after] == [str(e.id) for e in events]


def test_stored_bytes_are_valid_events(open_spool: Callable[..., Spool]) -> None:
    """What the spool stores parses back into the Event it returned."""
    spool = open_spool()
    (event,) = spool.append([finding()], policy_version="local-1")
    (_, seq, body) = spool.batch(1, 1 << 20)[0]
    assert Event.model_validate_json(body) == event
    assert seq == event.seq == 1
    assert event.agent_id == AGENT and event.policy_version == "local-1"


def test_renumber_above_moves_waiting_events_past_the_stored_seqs(
    open_spool: Callable[..., Spool],
) -> None:
    """Waiting events get seqs above the collector's, in the same order, in their bodies too;
    the byte count follows the longer bodies and new events continue after them."""
    spool = open_spool()
    events = spool.append([finding(index=i) for i in range(3)])
    spool.ack([events[0].id])
    assert spool.renumber_above(999_999) == 999_998
    rows = spool.batch(10, 1 << 20)
    assert [(row[0], row[1]) for row in rows] == [(str(events[1].id), 1_000_000),
                                                 (str(events[2].id), 1_000_001)]
    assert [Event.model_validate_json(row[2]).seq for row in rows] == [1_000_000, 1_000_001]
    assert spool.stats().bytes == sum(len(row[2]) for row in rows)
    assert spool.append([finding()])[0].seq == 1_000_002
    assert spool.renumber_above(5) == 0


def test_seq_continues_after_restart_and_deletes(open_spool: Callable[..., Spool]) -> None:
    """Sequence numbers are never reused, even after every event was acknowledged."""
    spool = open_spool()
    events = spool.append([finding() for _ in range(3)])
    spool.ack(e.id for e in events)
    spool.close()
    (event,) = open_spool().append([finding()])
    assert event.seq == 4


WRITER = """
import sys, uuid
from pathlib import Path
from agent.events import Finding, Severity
from agent.spool import Spool
spool = Spool(Path(sys.argv[1]), agent_id=uuid.UUID(sys.argv[2]), host="ws", max_bytes=1 << 26)
for _ in range(40):
    events = spool.append([Finding(kind="agent.test", severity=Severity.LOW, summary="并发")] * 5)
    print(*(e.seq for e in events), flush=True)
"""


def test_seq_unique_and_monotonic_across_two_processes(tmp_path: Path) -> None:
    """Two processes writing at once get distinct sequence numbers, each increasing."""
    path = tmp_path / "spool.db"
    Spool(path, agent_id=AGENT, host="ws", max_bytes=1 << 26).close()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(AGENT)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=120)[0] for w in writers]
    assert all(w.returncode == 0 for w in writers)
    per_process = [[int(s) for s in out.split()] for out in outputs]
    for seqs in per_process:
        assert seqs == sorted(seqs)
    assert sorted(per_process[0] + per_process[1]) == list(range(1, 401))
    with Spool(path, agent_id=AGENT, host="ws", max_bytes=1 << 26) as spool:
        assert [row[1] for row in spool.batch(1000, 1 << 30)] == list(range(1, 401))


def test_overflow_drops_least_severe_first(open_spool: Callable[..., Spool]) -> None:
    """A full spool drops info before low before medium."""
    spool = open_spool(max_bytes=64 * 1024)
    for i in range(120):
        severity = (Severity.INFO, Severity.LOW, Severity.MEDIUM)[i % 3]
        spool.append([finding(severity, i, padding=1000)])
    dropped = spool.stats().dropped
    assert dropped["info"] == 40
    assert dropped["low"] > 0 and dropped["medium"] == 0
    left = {sev for kind, sev, _ in kinds_and_severities(spool) if kind == "agent.test"}
    assert "info" not in left


def test_overflow_drops_oldest_first_within_a_severity(open_spool: Callable[..., Spool]) -> None:
    """Among events of one severity the oldest go first."""
    spool = open_spool(max_bytes=64 * 1024)
    for i in range(100):
        spool.append([finding(Severity.LOW, i, padding=1000)])
    indexes = [i for kind, _, i in kinds_and_severities(spool) if kind == "agent.test"]
    assert indexes == list(range(100 - len(indexes), 100))


def test_overflow_never_drops_high_while_lower_remain(open_spool: Callable[..., Spool]) -> None:
    """No high or critical event is dropped while a lower one (other than the report) remains."""
    spool = open_spool(max_bytes=64 * 1024)
    severities = [Severity.HIGH, Severity.INFO, Severity.CRITICAL, Severity.LOW, Severity.MEDIUM]
    for i in range(300):
        spool.append([finding(severities[i % 5], i, padding=800)])
        stats = spool.stats()
        if stats.dropped["high"] or stats.dropped["critical"]:
            lower = [
                sev
                for kind, sev, _ in kinds_and_severities(spool)
                if kind == "agent.test" and sev in ("info", "low", "medium")
            ]
            assert lower == []
    assert spool.stats().bytes <= 64 * 1024 + 1024


def test_drop_report_carries_the_counts(open_spool: Callable[..., Spool]) -> None:
    """Dropping events writes one agent.spool_dropped event whose counts match what was dropped."""
    spool = open_spool(max_bytes=64 * 1024)
    spool.configure_drop_report(Severity.MEDIUM, "agent.spool-dropped", "local-1")
    for i in range(80):
        spool.append([finding(Severity.INFO, i, padding=1000)])
    reports = [
        Event.model_validate_json(body)
        for _, _, body in spool.batch(1000, 1 << 30)
        if b'"agent.spool_dropped"' in body
    ]
    assert len(reports) == 1
    assert reports[0].rule_id == "agent.spool-dropped"
    assert reports[0].evidence["spool_max_bytes"] == 64 * 1024
    first = reports[0].evidence["dropped"]
    assert isinstance(first, dict) and first["info"] >= 1


def test_drop_counts_all_reach_a_report(open_spool: Callable[..., Spool]) -> None:
    """Drops made while a report waits go into the next report, written once the first is acked."""
    spool = open_spool(max_bytes=64 * 1024)
    reported = reports = 0
    for round_ in range(3):
        for i in range(60):
            spool.append([finding(Severity.INFO, round_ * 100 + i, padding=1000)])
        while waiting := [
            (event_id, body)
            for event_id, _, body in spool.batch(1000, 1 << 30)
            if b'"agent.spool_dropped"' in body
        ]:
            assert len(waiting) == 1  # one report at a time
            reported += sum(json.loads(waiting[0][1])["evidence"]["dropped"].values())
            reports += 1
            spool.ack([waiting[0][0]])
    assert reported == spool.stats().dropped_total
    assert reports >= 3


def test_drop_report_is_never_dropped(open_spool: Callable[..., Spool]) -> None:
    """A flood of critical events drops older critical ones but keeps the drop report."""
    spool = open_spool(max_bytes=64 * 1024)
    for i in range(200):
        spool.append([finding(Severity.CRITICAL, i, padding=1000)])
    kinds = [kind for kind, _, _ in kinds_and_severities(spool)]
    assert kinds.count("agent.spool_dropped") == 1
    assert spool.stats().dropped["critical"] > 0


def test_files_stay_bounded(tmp_path: Path, open_spool: Callable[..., Spool]) -> None:
    """Database and WAL stay below 2.75 times spool_max_bytes plus 1 MiB under a long flood."""
    max_bytes = 256 * 1024
    spool = open_spool(max_bytes=max_bytes)
    for i in range(3000):
        spool.append([finding(Severity.LOW, i, padding=1000)])
        if i % 7 == 0:
            spool.quarantine([spool.batch(1, 1 << 20)[0][0]], "test")
    on_disk = sum(p.stat().st_size for p in tmp_path.glob("spool.db*"))
    assert spool.stats().bytes <= max_bytes + 1024
    assert on_disk <= 2.75 * max_bytes + 1024 * 1024


def test_ack_deletes_exactly_the_given_ids(open_spool: Callable[..., Spool]) -> None:
    """ack removes the ids it is given and nothing else, and says how many it removed."""
    spool = open_spool()
    events = spool.append([finding(index=i) for i in range(5)])
    assert spool.ack([events[1].id, events[3].id, uuid.uuid4()]) == 2
    assert [row[0] for row in spool.batch(10, 1 << 20)] == [str(events[i].id) for i in (0, 2, 4)]
    assert spool.stats().depth == 3


def test_quarantine_moves_events_aside_and_counts(open_spool: Callable[..., Spool]) -> None:
    """Quarantined events leave the queue, keep their reason and are counted."""
    spool = open_spool()
    events = spool.append([finding(index=i) for i in range(3)])
    assert spool.quarantine([events[1].id], "invalid_batch: evidence: too big") == 1
    assert spool.stats().quarantined == 1
    assert spool.quarantined_rows() == [(str(events[1].id), "invalid_batch: evidence: too big")]
    assert [row[1] for row in spool.batch(10, 1 << 20)] == [1, 3]


def test_batch_is_bounded_by_count_and_bytes(open_spool: Callable[..., Spool]) -> None:
    """batch stops at max_events or max_bytes, whichever comes first, and always returns one."""
    spool = open_spool()
    spool.append([finding(index=i, padding=1000) for i in range(10)])
    assert [row[1] for row in spool.batch(4, 1 << 20)] == [1, 2, 3, 4]
    by_bytes = spool.batch(10, 3000)
    assert len(by_bytes) == 2 and sum(len(r[2]) for r in by_bytes) <= 3000
    assert len(spool.batch(10, 10)) == 1


def test_ship_result_is_kept_for_status(open_spool: Callable[..., Spool]) -> None:
    """The shipper's last result and error are readable from the stats."""
    spool = open_spool()
    spool.record_ship("retrying", "cannot reach the collector")
    stats = spool.stats()
    assert stats.last_ship_result == "retrying"
    assert stats.last_ship_error == "cannot reach the collector"
    assert stats.last_ship_at is not None and stats.last_ship_ok_at is None


def test_new_agent_id_restamps_waiting_events(open_spool: Callable[..., Spool]) -> None:
    """After re-enrollment, waiting events carry the new agent id so the collector takes them."""
    open_spool().append([finding()])
    new_id = uuid.uuid4()
    spool = open_spool(agent_id=new_id)
    (_, _, body) = spool.batch(1, 1 << 20)[0]
    assert Event.model_validate_json(body).agent_id == new_id


def test_corrupt_file_is_a_spool_error(tmp_path: Path) -> None:
    """A file that is not a SQLite database gives a SpoolError saying what to do."""
    path = tmp_path / "spool.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SpoolError, match="corrupt"):
        Spool(path, agent_id=AGENT, host="ws", max_bytes=1 << 20)


def test_locked_database_is_a_spool_error(tmp_path: Path) -> None:
    """A writer that holds the lock too long gives a SpoolError, not a hang."""
    path = tmp_path / "spool.db"
    spool = Spool(path, agent_id=AGENT, host="ws", max_bytes=1 << 20, busy_timeout_s=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(SpoolError, match="locked"):
            spool.append([finding()])
    finally:
        other.execute("ROLLBACK")
        other.close()
        spool.close()


def test_append_before_enrollment_is_refused(tmp_path: Path) -> None:
    """A spool opened without an agent id (status) refuses to make events."""
    spool = Spool(tmp_path / "spool.db", agent_id=None, host="ws", max_bytes=1 << 20)
    with spool, pytest.raises(SpoolError, match="enrolled"):
        spool.append([finding()])


def test_ack_records_the_send_in_the_same_commit(open_spool: Callable[..., Spool]) -> None:
    spool = open_spool()
    events = spool.append([finding(index=i) for i in range(3)])
    spool.record_ship("retrying", "cannot reach the collector")
    assert spool.ack([e.id for e in events], "ok: 3 accepted, 0 duplicates") == 3
    stats = spool.stats()
    assert stats.last_ship_result == "ok: 3 accepted, 0 duplicates"
    assert stats.last_ship_error is None and stats.last_ship_ok_at == stats.last_ship_at


def test_drained_backlog_gives_its_pages_back(open_spool: Callable[..., Spool]) -> None:
    """After a backlog drains, its free pages are returned to the file system."""
    spool = open_spool(max_bytes=16 * 1024 * 1024)

    def free_bytes() -> int:
        with spool._guard():
            return int(spool._db.execute("PRAGMA freelist_count").fetchone()[0]) * 4096

    backlog = spool.append([finding(index=i, padding=2000) for i in range(1000)])
    assert spool.ack([e.id for e in backlog]) == 1000
    assert free_bytes() < 64 * 1024
