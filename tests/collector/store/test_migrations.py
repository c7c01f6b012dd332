"""The Alembic migrations build exactly the schema collector/store/tables.py declares."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from agent.events import Event
from collector.errors import InvalidEventsError
from collector.store import migrate
from collector.store.database import Database
from collector.store.events import store_batch
from collector.store.fulltext import is_declared
from collector.store.tables import metadata


def test_schema_matches_tables(db: Database) -> None:
    """After upgrade head, autogenerate finds nothing to change."""
    with db.read() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_object": lambda _o, name, type_, _r, _c: is_declared(name, type_)})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_upgrade_reaches_head(db: Database) -> None:
    """The database reports the head revision after upgrade, and a second upgrade is a no-op."""
    migrate.upgrade(db)
    assert migrate.current_revision(db) == migrate.head_revision() == "0022_notification_alerts"


@contextlib.contextmanager
def store_at(revision: str, database_url: str, request: Any) -> Iterator[Database]:
    """A fresh store upgraded to ``revision`` only (on PostgreSQL, not the module's database)."""
    from collector.settings import CollectorSettings
    from tests.postgres import postgres_database

    with contextlib.ExitStack() as stack:
        if database_url.startswith("postgresql"):
            database_url = stack.enter_context(
                postgres_database(request.getfixturevalue("pg_server_url")))
        store = Database.from_settings(CollectorSettings(database_url=database_url),
                                       single_connection=True)
        stack.callback(store.dispose)
        migrate.upgrade(store, revision)
        assert migrate.current_revision(store) == revision
        yield store


def test_account_backfilled_by_0005(database_url: str, request: Any) -> None:
    """Events stored before 0005 get their evidence's account copied into the new column."""
    with store_at("0003", database_url, request) as store:
        with store.write() as conn:
            conn.execute(sa.text(
                "INSERT INTO agents (id, hostname, \"group\", enrolled_at, secret_hash) "
                "VALUES ('a', 'h', 'g', '2026-01-01 00:00:00.000000', 'x')"))
            for event_id, evidence in (("e1", '{"account": "wb_li"}'), ("e2", '{"n": 1}'),
                                       ("e3", '{"account": 5}')):
                conn.execute(sa.text(
                    "INSERT INTO events (id, agent_id, time, received_at, host, kind, severity,"
                    " summary, evidence) VALUES (:id, 'a', '2026-01-01 00:00:00.000000',"
                    " '2026-01-01 00:00:00.000000', 'h', 'x.y', 1, 's', :evidence)"),
                    {"id": event_id, "evidence": evidence})
        migrate.upgrade(store)
        with store.read() as conn:
            rows = dict(conn.execute(sa.text("SELECT id, account FROM events")).all())
        assert rows == {"e1": "wb_li", "e2": None, "e3": None}


def test_bundle_from_before_0006_has_no_agent_body(database_url: str, request: Any) -> None:
    """A bundle stored at 0005 keeps its bytes and has no agent body (a migration cannot sign):
    agents are served the full bundle until the next publish."""
    from collector.store.policies import latest_for_group

    with store_at("0005", database_url, request) as store:
        with store.write() as conn:
            conn.execute(sa.text(
                "INSERT INTO policy_bundles (version, \"group\", action, created_at, author, note,"
                " sha256, body, signature, public_key) VALUES (1, NULL, 'publish',"
                " '2026-01-01 00:00:00.000000', 'a', '', :sha, :body, 'sig', 'key')"),
                {"sha": "ab" * 32, "body": b"{}"})
        migrate.upgrade(store)
        bundle = latest_for_group(store, "court-a")
        assert bundle is not None and not bundle.has_agent_body
        served = bundle.for_agents()
        assert (served.body, served.signature, served.etag) == (b"{}", "sig", f'"1-{"ab" * 8}"')


def test_repeated_agent_seqs_set_aside_by_0007(database_url: str, request: Any) -> None:
    """Rows stored before 0007 that repeat an (agent, seq) all stay: the first keeps its seq,
    later ones keep their row with seq NULL and their seq in event_seqs_cleared; the store
    then refuses a new repeat and takes another agent's event with a stored id."""
    with store_at("0006", database_url, request) as store:
        with store.write() as conn:
            for agent_id in ("a", "b"):
                conn.execute(sa.text(
                    "INSERT INTO agents (id, hostname, \"group\", enrolled_at, secret_hash) "
                    "VALUES (:id, 'h', 'g', '2026-01-01 00:00:00.000000', 'x')"), {"id": agent_id})
            for event_id, agent_id, seq in (("e1", "a", 1), ("e2", "a", 1), ("e3", "a", 1),
                                            ("e4", "a", 2), ("e5", "b", 1), ("e6", "a", None)):
                conn.execute(sa.text(
                    "INSERT INTO events (id, agent_id, seq, time, received_at, host, kind,"
                    " severity, summary, evidence) VALUES (:id, :agent, :seq,"
                    " '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', 'h', 'x.y', 1,"
                    " 's', '{}')"), {"id": event_id, "agent": agent_id, "seq": seq})
        migrate.upgrade(store)
        with store.read() as conn:
            rows = dict(conn.execute(sa.text("SELECT id, seq FROM events")).all())
            cleared = conn.execute(sa.text(
                "SELECT c.event_id, c.agent_id, c.seq FROM event_seqs_cleared c"
                " JOIN events e ON e.pk = c.event_pk ORDER BY c.event_id")).all()
        assert rows == {"e1": 1, "e2": None, "e3": None, "e4": 2, "e5": 1, "e6": None}
        assert [tuple(row) for row in cleared] == [("e2", "a", 1), ("e3", "a", 1)]

        def one(agent_id: str, seq: int, event_id: str) -> Event:
            return Event.model_validate({
                "id": event_id, "seq": seq, "time": "2026-01-02T00:00:00+08:00",
                "agent_id": agent_id, "host": "h", "kind": "x.y", "severity": "info",
                "summary": "s"})

        now = datetime.now(UTC)
        ids = [str(uuid.UUID(int=n)) for n in range(1, 4)]
        with pytest.raises(InvalidEventsError):
            store_batch(store, "a", [one("00000000-0000-0000-0000-00000000000a", 2, ids[0])], now)
        stored = store_batch(store, "b", [one("00000000-0000-0000-0000-00000000000b", 2, ids[1])],
                             now)
        assert [str(i) for i in stored.accepted] == [ids[1]]
        other = store_batch(store, "a", [one("00000000-0000-0000-0000-00000000000a", 3, ids[1])],
                            now)
        assert [str(i) for i in other.accepted] == [ids[1]]


def test_sm2_policy_key_fits_after_0010(database_url: str, request: Any) -> None:
    """A key and bundle stored at 0007 (Ed25519) keep their key text; after 0010 an SM2 key's
    92-character policy-key text fits both columns (PostgreSQL enforces the length)."""
    from agent.signing import Sm2Signer
    from collector.policy.signing import register_public_key

    ed25519_text = "A" * 43 + "="
    with store_at("0007", database_url, request) as store:
        with store.write() as conn:
            conn.execute(sa.text(
                "INSERT INTO policy_keys (public_key, created_at) VALUES"
                " (:key, '2026-01-01 00:00:00.000000')"), {"key": ed25519_text})
            conn.execute(sa.text(
                "INSERT INTO policy_bundles (version, \"group\", action, created_at, author, note,"
                " sha256, body, signature, public_key) VALUES (1, NULL, 'publish',"
                " '2026-01-01 00:00:00.000000', 'a', '', :sha, :body, 'sig', :key)"),
                {"sha": "ab" * 32, "body": b"{}", "key": ed25519_text})
        migrate.upgrade(store)
        sm2_text = Sm2Signer().public_key.text
        with store.write() as conn:
            assert conn.execute(sa.text("SELECT public_key FROM policy_bundles")).scalar() == (
                ed25519_text)
            conn.execute(sa.text("DELETE FROM policy_keys"))
            conn.execute(sa.text("UPDATE policy_bundles SET public_key = :key"), {"key": sm2_text})
        register_public_key(store, sm2_text)
        with store.read() as conn:
            assert conn.execute(sa.text("SELECT public_key FROM policy_keys")).scalar() == sm2_text
            assert conn.execute(sa.text("SELECT public_key FROM policy_bundles")).scalar() == (
                sm2_text)


def test_events_before_0014_are_searchable(database_url: str, request: Any) -> None:
    """0014's trigram index covers events stored before it; later inserts and deletes keep it."""
    from collector.store.events import EventFilter, query_events

    with store_at("0007", database_url, request) as store:
        with store.write() as conn:
            conn.execute(sa.text(
                "INSERT INTO agents (id, hostname, \"group\", enrolled_at, secret_hash) "
                "VALUES ('a', 'h', 'g', '2026-01-01 00:00:00.000000', 'x')"))
            for event_id, summary in (("e1", "外联到 203.0.113.9"), ("e2", "文书含身份证号")):
                conn.execute(sa.text(
                    "INSERT INTO events (id, agent_id, time, received_at, host, kind, severity,"
                    " summary, evidence) VALUES (:id, 'a', '2026-01-01 00:00:00.000000',"
                    " '2026-01-01 00:00:00.000000', 'ws-9', 'x.y', 1, :summary, '{}')"),
                    {"id": event_id, "summary": summary})
        migrate.upgrade(store)

        def found(text: str) -> list[str]:
            return [e["id"] for e in query_events(store, EventFilter(text=text), 10, None)]

        assert found("113.9") == ["e1"] and found("身份证") == ["e2"] and found("WS-9") != []
        with store.write() as conn:
            conn.execute(sa.text("DELETE FROM events WHERE id = 'e1'"))
        assert found("113.9") == []
        if store.dialect == "sqlite":
            with store.read() as conn:
                check = conn.execute(sa.text(
                    "INSERT INTO events_fts(events_fts) VALUES ('integrity-check')"))
                check.close()


def test_notification_alerts_backfilled_by_0022(database_url: str, request: Any) -> None:
    """Notifications queued before 0022 are found by each alert they carried."""
    with store_at("0021_releases", database_url, request) as store:
        with store.write() as conn:
            for notification_id, alert_ids in ((1, "[7, 9]"), (2, "[]"), (3, "[9, 9]")):
                conn.execute(sa.text(
                    "INSERT INTO notifications (id, receiver, channel_index, reason, alert_ids,"
                    " persons, message, status, attempts, next_attempt_at, created_at) VALUES"
                    " (:id, 'r', 0, 'group', :alert_ids, '[]', '{}', 'sent', 1,"
                    " '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')"),
                    {"id": notification_id, "alert_ids": alert_ids})
        migrate.upgrade(store)
        with store.read() as conn:
            rows = sorted(conn.execute(sa.text(
                "SELECT notification_id, alert_id FROM notification_alerts")).all())
        assert [tuple(row) for row in rows] == [(1, 7), (1, 9), (3, 9)]
