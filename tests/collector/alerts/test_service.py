"""Alerts: grouping at ingest, triage transitions with their audit trail, the change feed.

Every test runs on SQLite and on PostgreSQL (``database_url`` fixture).
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from agent.events import Event, uuid7
from collector.alerts import service
from collector.alerts.feed import AlertFeed
from collector.alerts.grouping import fingerprint
from collector.settings import CollectorSettings
from collector.store import audit
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.events import store_batch
from tests.collector.conftest import EnrolledAgent, enroll, event, heartbeat, post_events

ALICE = Actor("alice", via="test", client_address="192.0.2.10")


def document(agent_id: str, seq: int, sha: str = "a", severity: str = "high",
             **extra: Any) -> dict[str, Any]:
    evidence = {
        "file_name": "判决书.docx", "sha256": sha * 64, "size": 10,
        "verdict": "do_not_publish", "profile": "public", "action": "block",
        "basis": "test", "occurrences": [], "occurrences_total": 1,
    }
    return event(agent_id, seq, kind="document.block", severity=severity,
                 rule_id="document.id_number", evidence=evidence, **extra)


def all_alerts(db: Database) -> list[dict[str, Any]]:
    return service.list_alerts(db, service.AlertFilter(), 1000)


def test_events_grouped_by_fingerprint(client: Any, db: Database, agent: EnrolledAgent) -> None:
    """Repeats raise the count; another fingerprint field value makes another alert."""
    first = document(agent.agent_id, 1)
    response = post_events(client, agent, [first, document(agent.agent_id, 2),
                                           heartbeat(agent.agent_id, 3)])
    assert response.status_code == 200, response.text
    (alert,) = all_alerts(db)
    assert alert["count"] == 2 and alert["status"] == "new"
    assert alert["rule_id"] == "document.id_number" and alert["host"] == "ws-001"
    assert alert["title"] == "测试事件" and alert["severity"] == "high"
    post_events(client, agent, [document(agent.agent_id, 4, severity="critical"),
                                document(agent.agent_id, 5, sha="b")])
    listed = all_alerts(db)
    assert sorted(a["count"] for a in listed) == [1, 3]
    assert {a["severity"] for a in listed} == {"critical", "high"}
    assert service.alert_of_event(db, first["id"]) == alert["id"]


def test_info_events_make_no_alert(client: Any, db: Database, agent: EnrolledAgent) -> None:
    post_events(client, agent, [heartbeat(agent.agent_id, 1),
                                event(agent.agent_id, 2, severity="info")])
    assert all_alerts(db) == []


def test_resent_batch_counts_once(client: Any, db: Database, agent: EnrolledAgent) -> None:
    batch = [document(agent.agent_id, 1), document(agent.agent_id, 2)]
    post_events(client, agent, batch)
    post_events(client, agent, batch)
    (alert,) = all_alerts(db)
    assert alert["count"] == 2


def test_fingerprint_names_no_kind() -> None:
    """Rule, host, account and the evidence model's declared fields; nothing else."""
    base = {"id": str(uuid7()), "time": datetime.now(UTC).isoformat(), "agent_id": str(uuid7()),
            "host": "ws-1", "kind": "account.program", "severity": "high", "summary": "x",
            "rule_id": "account.forbidden_program"}
    evidence = {"account": "wb_zhang", "pid": 1, "name": "nc", "matched": "nc"}
    one = Event.model_validate({**base, "evidence": evidence})
    other_pid = Event.model_validate({**base, "evidence": {**evidence, "pid": 2}})
    other_name = Event.model_validate({**base, "evidence": {**evidence, "name": "ncat"}})
    other_account = Event.model_validate({**base, "evidence": {**evidence, "account": "wb_li"}})
    assert fingerprint(one) == fingerprint(other_pid)
    assert len({fingerprint(one), fingerprint(other_name), fingerprint(other_account)}) == 3


def test_triage_writes_the_audit_log(client: Any, db: Database, agent: EnrolledAgent) -> None:
    post_events(client, agent, [document(agent.agent_id, 1)])
    (alert,) = all_alerts(db)
    alert_id = alert["id"]
    service.acknowledge(db, alert_id, ALICE, assignee="bob")
    service.start(db, alert_id, ALICE)
    service.close(db, alert_id, ALICE, "false_positive", "测试文书，非真实当事人")
    closed = service.get_alert(db, alert_id)
    assert closed is not None
    assert closed["status"] == "closed" and closed["resolution"] == "false_positive"
    assert closed["assignee"] == "bob" and closed["acknowledged_at"] and closed["closed_at"]
    trail = [(e["actor"], e["action"], e["from"], e["to"])
             for e in audit.entries_for(db, "alert", [str(alert_id)])]
    assert trail == [
        ("system", "alert.open", None, "new"),
        ("alice", "alert.assign", None, "bob"),
        ("alice", "alert.acknowledge", "new", "acknowledged"),
        ("alice", "alert.start", "acknowledged", "in_progress"),
        ("alice", "alert.close", "in_progress", "closed:false_positive"),
    ]
    entries = audit.entries_for(db, "alert", [str(alert_id)])
    assert entries[-1]["reason"] == "测试文书，非真实当事人"
    assert entries[-1]["client_address"] == "192.0.2.10" and entries[-1]["via"] == "test"


def test_refused_transitions(client: Any, db: Database, agent: EnrolledAgent) -> None:
    post_events(client, agent, [document(agent.agent_id, 1)])
    (alert,) = all_alerts(db)
    alert_id = alert["id"]
    with pytest.raises(service.AlertError) as refused:
        service.start(db, alert_id, ALICE)
    assert refused.value.code == "invalid_transition"
    with pytest.raises(service.AlertError, match="resolution"):
        service.close(db, alert_id, ALICE, "because", "x")
    with pytest.raises(service.AlertError, match="comment"):
        service.close(db, alert_id, ALICE, "other", "  ")
    service.close(db, alert_id, ALICE, "other", "ok")
    with pytest.raises(service.AlertError, match="reason"):
        service.reopen(db, alert_id, ALICE, "")
    with pytest.raises(service.AlertError) as missing:
        service.start(db, 999_999, ALICE)
    assert missing.value.code == "not_found"
    # only the open and the close were recorded
    actions = [e["action"] for e in audit.entries_for(db, "alert", [str(alert_id)])]
    assert actions == ["alert.open", "alert.close"]


def test_event_after_close_opens_a_new_alert(
    client: Any, db: Database, agent: EnrolledAgent
) -> None:
    """The closed alert stays closed; reopening it is refused while the newer one is open."""
    post_events(client, agent, [document(agent.agent_id, 1)])
    (old,) = all_alerts(db)
    service.close(db, old["id"], ALICE, "true_positive", "已处理")
    post_events(client, agent, [document(agent.agent_id, 2)])
    newer = [a for a in all_alerts(db) if a["id"] != old["id"]]
    assert len(newer) == 1 and newer[0]["status"] == "new" and newer[0]["count"] == 1
    assert newer[0]["fingerprint"] == old["fingerprint"]
    with pytest.raises(service.AlertError) as refused:
        service.reopen(db, old["id"], ALICE, "再查")
    assert refused.value.code == "newer_alert_open"
    service.close(db, newer[0]["id"], ALICE, "duplicate", "同一事件")
    service.reopen(db, old["id"], ALICE, "再查")
    reopened = service.get_alert(db, old["id"])
    assert reopened is not None
    assert reopened["status"] == "acknowledged" and reopened["reopened_count"] == 1
    assert reopened["resolution"] is None and reopened["assignee"] == "alice"


def test_bulk_action_one_outcome_and_entry_each(
    client: Any, db: Database, agent: EnrolledAgent
) -> None:
    post_events(client, agent, [document(agent.agent_id, i, sha=c)
                                for i, c in enumerate("abc", start=1)])
    ids = [a["id"] for a in all_alerts(db)]
    service.acknowledge(db, ids[0], ALICE)
    outcomes = service.transition(db, ids, "acknowledge", ALICE)
    assert [o.ok for o in outcomes] == [i != ids[0] for i in sorted(ids)]
    entries = audit.entries_for(db, "alert", [str(i) for i in ids])
    assert sum(e["action"] == "alert.acknowledge" for e in entries) == 3


def test_change_feed_in_order(client: Any, db: Database, agent: EnrolledAgent) -> None:
    start = service.latest_change(db)
    post_events(client, agent, [document(agent.agent_id, 1)])
    post_events(client, agent, [document(agent.agent_id, 2)])
    (alert,) = all_alerts(db)
    service.acknowledge(db, alert["id"], ALICE)
    changes = service.changes_since(db, start)
    assert [c.change for c in changes] == ["opened", "count_raised", "status_changed"]
    assert [c.id for c in changes] == sorted(c.id for c in changes)
    assert service.changes_since(db, changes[-1].id) == []
    assert service.changes_since(db, start, limit=1) == changes[:1]


def test_one_batch_touching_many_alerts(
    client: Any, db: Database, agent: EnrolledAgent
) -> None:
    """A batch is grouped as a whole: alerts it raises, opens after a close and opens afresh
    each get their count, times, newest event, links, audit entry and one feed entry."""
    early = datetime.now(UTC) - timedelta(hours=1)
    first_a, first_b = (document(agent.agent_id, seq, sha=sha, time=early)
                        for seq, sha in ((1, "a"), (2, "b")))
    post_events(client, agent, [first_a, first_b])
    alert_a, alert_b = (service.alert_of_event(db, e["id"]) for e in (first_a, first_b))
    assert alert_a is not None and alert_b is not None and alert_a != alert_b
    service.close(db, alert_b, ALICE, "true_positive", "已处理")
    start = service.latest_change(db)
    later = datetime.now(UTC)
    batch = [
        document(agent.agent_id, 3, sha="a", time=later),
        document(agent.agent_id, 4, sha="a", severity="critical", time=later - timedelta(1)),
        document(agent.agent_id, 5, sha="b", time=later),
        *(document(agent.agent_id, 6 + i, sha=c, time=later) for i, c in enumerate("cdef0")),
        document(agent.agent_id, 11, sha="c", time=later + timedelta(seconds=1)),
        heartbeat(agent.agent_id, 12),
    ]
    assert post_events(client, agent, batch).status_code == 200
    alerts = {a["id"]: a for a in all_alerts(db)}
    assert len(alerts) == 2 + 1 + 5  # a raised; b opened anew after its close; five new
    raised = alerts[alert_a]
    assert raised["count"] == 3 and raised["severity"] == "critical"
    assert raised["last_event_id"] == batch[0]["id"]  # the newest, not the last in the batch
    newest_c = next(a for a in alerts.values() if a["last_event_id"] == batch[8]["id"])
    assert newest_c["count"] == 2
    for item in batch[:-1]:
        assert service.alert_of_event(db, item["id"]) is not None, item["seq"]
    changes = service.changes_since(db, start)
    opened = {c.alert_id for c in changes if c.change == "opened"}
    assert [c.change for c in changes].count("count_raised") == 1
    assert len(opened) == 6 and len(changes) == 7
    assert [c.id for c in changes] == sorted(c.id for c in changes)
    entries = audit.entries_for(db, "alert", [str(i) for i in opened])
    assert sorted(int(e["object_id"]) for e in entries if e["action"] == "alert.open") == sorted(
        opened)


def test_feed_delivers_to_subscribers(settings: CollectorSettings, db: Database,
                                      client: Any, agent: EnrolledAgent) -> None:
    async def scenario() -> list[str]:
        feed = AlertFeed(db, poll_interval_s=30)
        runner = asyncio.create_task(feed.run())
        async with feed.subscribe() as queue:
            await asyncio.wait_for(feed.ready.wait(), 10)
            await asyncio.to_thread(post_events, client, agent, [document(agent.agent_id, 1)])
            feed.poke()
            got = [(await asyncio.wait_for(queue.get(), 10)).change]
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        return got

    assert asyncio.run(scenario()) == ["opened"]


def test_summary_counts(client: Any, db: Database, agent: EnrolledAgent) -> None:
    post_events(client, agent, [document(agent.agent_id, 1),
                                document(agent.agent_id, 2, sha="b", severity="low")])
    counts = service.count_alerts(db, service.AlertFilter())
    assert counts["status"]["new"] == 2
    assert counts["severity"]["high"] == 1 and counts["severity"]["low"] == 1
    found = service.list_alerts(db, service.AlertFilter(text="%"), 10)
    assert found == []  # a LIKE wildcard is a literal character


def test_two_writers_one_alert(client: Any, db: Database) -> None:
    """Concurrent batches of four agents (one host name) make one alert counting every event.

    Each agent's row lock is its own, so on PostgreSQL the batches really overlap.
    """
    now = datetime.now(UTC)
    writers = [enroll(client, db, hostname="ws-001") for _ in range(4)]

    def batch(who: EnrolledAgent) -> list[Event]:
        return [Event.model_validate(document(who.agent_id, i, time=now + timedelta(seconds=i)))
                for i in range(1, 6)]

    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            who = writers[index]
            store_batch(db, who.agent_id, batch(who), datetime.now(UTC))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    (alert,) = all_alerts(db)
    assert alert["count"] == 20


@pytest.mark.postgres
def test_audit_log_refuses_update_on_postgres(pg_database: str) -> None:
    engine = sa.create_engine(pg_database, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO audit_log (at, actor, via, action, object_type, object_id) "
                "VALUES (now(), 'x', 'test', 'a', 'alert', '1')"))
        for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def test_the_feed_stops_when_cancelled_in_the_same_turn_as_a_wake(db: Database) -> None:
    """On Python 3.11 asyncio.wait_for lost such a cancel and shutdown hung for good."""

    async def scenario() -> bool:
        feed = AlertFeed(db, poll_interval_s=30)
        task = asyncio.create_task(feed.run())
        await asyncio.wait_for(feed.ready.wait(), 10)
        await asyncio.sleep(0.05)  # the feed is now waiting for a wake
        feed._wake.set()
        task.cancel()
        done, _pending = await asyncio.wait({task}, timeout=5)
        if not done:
            task.cancel()  # let asyncio.run finish either way
            return False
        return task.cancelled()

    assert asyncio.run(scenario())
