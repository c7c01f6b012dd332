"""One output's loop against a real HTTPS receiver, on SQLite and on PostgreSQL.

Events go in through the real ingest API; ``Exporter.step`` sends them to a
loopback HTTPS server with its own private CA. The cursor moves only after a
2xx, a refused batch is sent again, one process at a time holds an output,
and the lag raises one event and one recovery.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from collector.cli import main as cli_main
from collector.errors import ExportError
from collector.export import cursor
from collector.export.config import OutputSettings
from collector.export.exporter import Exporter
from collector.metrics import Metrics
from collector.settings import CollectorSettings
from collector.store.database import Database
from collector.store.tables import export_cursors
from tests.collector.conftest import EnrolledAgent, event, heartbeat, post_events
from tests.export_receivers import NdjsonReceiver, ndjson_receiver


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NdjsonReceiver]:
    with ndjson_receiver(tmp_path_factory.mktemp("ndjson")) as server:
        yield server


@pytest.fixture
def inbox(receiver: NdjsonReceiver) -> NdjsonReceiver:
    with receiver.lock:
        receiver.documents.clear()
        receiver.refusing = None
        receiver.posts = 0
    return receiver


def output(receiver: NdjsonReceiver, **extra: Any) -> OutputSettings:
    return OutputSettings.model_validate({
        "name": "siem", "type": "https-ndjson", "url": receiver.url,
        "ca_file": receiver.tls.ca_cert, "batch_size": 3, **extra})


def drain(exporter: Exporter) -> int:
    """Step until nothing more is waiting; how many records went out."""
    sent = 0
    for _ in range(100):
        result = exporter.step()
        sent += result.sent
        if not result.more:
            return sent
    raise AssertionError("the exporter never caught up")


def cursor_row(db: Database, name: str = "siem") -> Any:
    with db.read() as conn:
        return conn.execute(sa.select(export_cursors).where(export_cursors.c.name == name)).one()


def document_event(agent_id: str, seq: int) -> dict[str, Any]:
    evidence = {"file_name": "判决书.docx", "sha256": "a" * 64, "size": 10,
                "verdict": "do_not_publish", "profile": "public", "action": "block",
                "basis": "test", "occurrences": [], "occurrences_total": 1}
    return event(agent_id, seq, kind="document.block", severity="high",
                 rule_id="document.id_number", evidence=evidence)


def test_events_and_alert_changes_delivered_once_in_order(
    client: Any, db: Database, agent: EnrolledAgent, inbox: NdjsonReceiver,
) -> None:
    """Every event the filter takes arrives once, in store order; heartbeats are left out."""
    batch = [event(agent.agent_id, 1, severity="info"), heartbeat(agent.agent_id, 2),
             *[event(agent.agent_id, seq, severity="info") for seq in range(3, 8)],
             document_event(agent.agent_id, 8)]
    assert post_events(client, agent, batch).status_code == 200
    exporter = Exporter(db, output(inbox), Metrics().export)
    drain(exporter)
    documents = inbox.received()
    sent_events = [d for d in documents if d["event"]["dataset"] != "courtguard.alert"]
    expected = [e["id"] for e in batch if e["kind"] != "agent.heartbeat"]
    assert [d["event"]["id"] for d in sent_events] == expected
    changes = [d for d in documents if d["event"]["dataset"] == "courtguard.alert"]
    assert [c["event"]["action"] for c in changes] == ["alert.opened"]
    assert changes[0]["rule"]["id"] == "document.id_number"
    assert sent_events[-1]["file"]["hash"]["sha256"] == "a" * 64
    posts = inbox.posts
    assert drain(exporter) == 0 and inbox.posts == posts  # nothing twice
    row = cursor_row(db)
    assert row.sent == len(documents) and row.failed == 0
    more = [event(agent.agent_id, 9, severity="info")]
    post_events(client, agent, more)
    drain(exporter)
    assert [d["event"]["id"] for d in inbox.received()[len(documents):]] == [more[0]["id"]]


def test_filters_by_severity_and_pillar(
    client: Any, db: Database, agent: EnrolledAgent, inbox: NdjsonReceiver,
) -> None:
    batch = [event(agent.agent_id, 1, severity="info"), document_event(agent.agent_id, 2),
             event(agent.agent_id, 3, severity="high")]
    post_events(client, agent, batch)
    exporter = Exporter(db, output(inbox, severities=["high"], pillars=["document"],
                                   alert_changes=False), Metrics().export)
    drain(exporter)
    assert [d["event"]["id"] for d in inbox.received()] == [batch[1]["id"]]
    assert cursor_row(db).event_cursor >= 3  # filtered-out events are passed, not retried


def test_refused_batch_keeps_the_cursor_and_is_sent_again(
    client: Any, db: Database, agent: EnrolledAgent, inbox: NdjsonReceiver,
) -> None:
    batch = [event(agent.agent_id, seq, severity="info") for seq in range(1, 5)]
    post_events(client, agent, batch)
    metrics = Metrics()
    exporter = Exporter(db, output(inbox, alert_changes=False), metrics.export)
    inbox.refusing = 503
    with pytest.raises(ExportError, match="HTTP 503"):
        exporter.step()
    row = cursor_row(db)
    assert row.event_cursor == 0 and row.failed == 1 and "拒收" in row.last_error
    assert inbox.received() == []
    inbox.refusing = None
    drain(exporter)
    assert [d["event"]["id"] for d in inbox.received()] == [e["id"] for e in batch]
    text = metrics.render().decode()
    assert 'courtguard_export_failed_total{output="siem"} 1.0' in text
    assert 'courtguard_export_sent_total{output="siem",record="event"} 4.0' in text


def test_one_process_at_a_time(
    client: Any, db: Database, agent: EnrolledAgent, inbox: NdjsonReceiver,
) -> None:
    post_events(client, agent, [event(agent.agent_id, 1, severity="info")])
    first = Exporter(db, output(inbox), Metrics().export, owner="first")
    second = Exporter(db, output(inbox), Metrics().export, owner="second")
    assert first.step().sent == 1
    assert second.step().idle
    first.close()  # hands the output over at once
    assert not second.step().idle
    assert len(inbox.received()) == 1


def test_lag_raises_one_event_and_one_recovery(
    client: Any, db: Database, agent: EnrolledAgent, inbox: NdjsonReceiver,
) -> None:
    post_events(client, agent, [event(agent.agent_id, 1, severity="info")])
    later = datetime.now(UTC) + timedelta(hours=2)
    exporter = Exporter(db, output(inbox, lag_alert_s=600), Metrics().export,
                        clock=lambda: later)
    inbox.refusing = 500
    for _ in range(3):
        exporter._lag_checked = None  # measure on every pass
        with pytest.raises(ExportError):
            exporter.step()
    kinds = [e["kind"] for e in client.get(
        "/api/v1/events", headers=admin_headers(db)).json()["events"]]
    assert kinds.count("collector.export_lagging") == 1
    assert cursor_row(db).lagging_since is not None
    inbox.refusing = None
    drain(exporter)
    exporter._lag_checked = None
    exporter.step()
    kinds = [e["kind"] for e in client.get(
        "/api/v1/events", headers=admin_headers(db)).json()["events"]]
    assert kinds.count("collector.export_recovered") == 1
    assert cursor_row(db).lagging_since is None
    lagging = [d for d in inbox.received() if d["event"]["action"] == "collector.export_lagging"]
    assert lagging and lagging[0]["courtguard"]["evidence"]["output"] == "siem"


def admin_headers(db: Database) -> dict[str, str]:
    from collector.store import apikeys

    key = apikeys.create_api_key(db, name=f"t-{uuid.uuid4().hex[:6]}", role="admin",
                                 now=datetime.now(UTC))[1]
    return {"Authorization": f"Bearer {key}"}


def test_gap_holds_while_a_transaction_that_may_fill_it_runs() -> None:
    """A missing pk holds the cursor until every transaction running when it was seen ended."""
    rows = [cursor.StoredEvent(pk, str(pk), pk, datetime.now(UTC), datetime.now(UTC), "a", "h",
                               "agent.test", cursor.Severity.INFO, None, None, "x", {})
            for pk in (1, 2, 4, 5)]
    gaps: dict[int, cursor.Gap] = {}

    def pks(after: int, before: set[int], now_s: float) -> list[int]:
        usable, _ = cursor.contiguous([r for r in rows if r.pk > after], after, gaps,
                                      running_before=frozenset(before),
                                      running_after=frozenset({7, 8}), now_s=now_s,
                                      ceiling_s=60.0)
        return [r.pk for r in usable]

    assert pks(0, set(), 0.0) == [1, 2]  # first sight: 7 and 8 may hold pk 3
    assert pks(2, {8, 9}, 1.0) == []  # 8 still runs
    assert pks(2, {9}, 2.0) == [4, 5]  # 7 and 8 ended and pk 3 is still missing: passed
    assert gaps == {}
    gaps[3] = cursor.Gap(0.0, frozenset({8}))
    usable, forced = cursor.contiguous(rows[2:], 2, gaps, running_before=frozenset({8}),
                                       running_after=frozenset({8}), now_s=61.0, ceiling_s=60.0)
    assert [r.pk for r in usable] == [4, 5] and forced == [3]  # an idle session: the ceiling


def test_export_status_in_chinese(
    client: Any, db: Database, agent: EnrolledAgent, inbox: NdjsonReceiver,
    settings: CollectorSettings, tmp_path: Path,
) -> None:
    post_events(client, agent, [event(agent.agent_id, seq, severity="info") for seq in (1, 2)])
    exporter = Exporter(db, output(inbox), Metrics().export)
    inbox.refusing = 502
    with pytest.raises(ExportError):
        exporter.step()
    config = tmp_path / "collector.toml"
    config.write_text(
        f'data_dir = "{settings.data_dir}"\ndatabase_url = "{settings.database_url}"\n'
        f'[[export.outputs]]\nname = "siem"\ntype = "https-ndjson"\nurl = "{inbox.url}"\n'
        f'ca_file = "{inbox.tls.ca_cert}"\n'
        '[[export.outputs]]\nname = "soc"\ntype = "syslog-tls"\nhost = "127.0.0.1"\n'
        'format = "cef"\n')
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["export", "status", "--config", str(config)]) == 0
    text = out.getvalue()
    assert "output" in text and "backlog" in text and "not started" in text
    assert "2 events" in text and "HTTP 502" in text and "last error" in text


def _collector_event(summary: str) -> Any:
    from agent.events import Event
    from collector.store.agents import COLLECTOR_SOURCE_ID

    return Event(id=uuid.uuid4(), seq=None, time=datetime.now(UTC),
                 agent_id=uuid.UUID(COLLECTOR_SOURCE_ID), host="collector",
                 kind="agent.test", severity="info", summary=summary, evidence={})


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_postgres_batch_still_committing_is_waited_for(
    db: Database, inbox: NdjsonReceiver,
) -> None:
    """A lower pk in a transaction not yet committed holds back a higher one already visible;
    a rolled-back one is passed once its transaction has ended."""
    from collector.own_events import store_collector_event
    from collector.store.agents import ensure_collector_source
    from collector.store.events import insert_event

    def stored(summary: str) -> None:
        event = _collector_event(summary)
        store_collector_event(db, event_id=event.id, kind=event.kind, severity=event.severity,
                              summary=summary, evidence={}, policy_version=None,
                              now=event.time)

    stored("first")  # makes the collector's own agents row, committed
    exporter = Exporter(db, output(inbox, exclude_kinds=[], batch_size=50), Metrics().export)
    drain(exporter)
    engine = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    try:
        for outcome in ("commit", "rollback"):
            with engine.connect() as conn:
                transaction = conn.begin()
                slow = _collector_event(f"slow {outcome}")
                ensure_collector_source(conn, "postgresql", slow.time)
                insert_event(conn, "postgresql", slow, slow.time)  # takes the lower pk
                stored(f"fast {outcome}")  # a higher pk, committed and visible
                before = len(inbox.received())
                for _ in range(3):
                    exporter.step()
                assert len(inbox.received()) == before, "sent past a batch still committing"
                getattr(transaction, outcome)()
            drain(exporter)
            drain(exporter)
            summaries = [d["message"] for d in inbox.received()[before:]]
            expected = [f"slow {outcome}", f"fast {outcome}"] if outcome == "commit" else [
                f"fast {outcome}"]
            assert summaries == expected
    finally:
        engine.dispose()
