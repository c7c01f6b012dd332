"""The Alembic migrations build exactly the schema collector/store/tables.py declares."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from collector.store import migrate
from collector.store.database import Database
from collector.store.tables import metadata


def test_schema_matches_tables(db: Database) -> None:
    """After upgrade head, autogenerate finds nothing to change."""
    with db.read() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata)
    assert diff == []


def test_upgrade_reaches_head(db: Database) -> None:
    """The database reports the head revision after upgrade, and a second upgrade is a no-op."""
    migrate.upgrade(db)
    assert migrate.current_revision(db) == migrate.head_revision() == "0006"


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
