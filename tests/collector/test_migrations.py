"""The Alembic migrations build exactly the schema collector/store/tables.py declares."""

from __future__ import annotations

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
    assert migrate.current_revision(db) == migrate.head_revision() == "0004"
