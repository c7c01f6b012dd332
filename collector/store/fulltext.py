"""Free-text search over events through a trigram index: FTS5 on SQLite, pg_trgm on PostgreSQL.

Both answer "contains this text" (case-insensitive) for text of three or more
characters from an index, whatever the language: a trigram index needs no word
boundaries, which Chinese summaries do not have. Shorter text is rare and
scans, bounded by the other filters.

SQLite keeps ``events_fts`` (an FTS5 table over ``events`` as external
content, rowid = ``events.pk``) up to date by triggers, so every writer of
``events`` (ingest, collector-own events, retention) keeps it without knowing.
PostgreSQL keeps one GIN index over the three searched columns; migration
0008 creates it when ``CREATE EXTENSION pg_trgm`` succeeds.

The index pays off for selective text. Text that matches a large share of
the store is cheaper to find by walking the listing's own order and testing
each row, which finds a page of matches within the first few hundred rows:
``event_text_condition`` decides between the two from a bounded count.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Connection, Integer, column, or_, text

from collector.store.tables import events

FTS_TABLE: Final = "events_fts"
#: Index-only names the migrations make but ``tables.metadata`` does not declare.
NOT_DECLARED: Final = frozenset({FTS_TABLE, *(f"{FTS_TABLE}_{part}" for part in (
    "data", "idx", "docsize", "config", "content")), "ix_events_text_trgm"})

SQLITE_FTS_DDL: Final = (
    "CREATE VIRTUAL TABLE events_fts USING fts5(summary, host, rule_id, "
    "content='events', content_rowid='pk', tokenize='trigram')",
    "CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN "
    "INSERT INTO events_fts(rowid, summary, host, rule_id) "
    "VALUES (new.pk, new.summary, new.host, new.rule_id); END",
    "CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN "
    "INSERT INTO events_fts(events_fts, rowid, summary, host, rule_id) "
    "VALUES ('delete', old.pk, old.summary, old.host, old.rule_id); END",
    "CREATE TRIGGER events_fts_update AFTER UPDATE OF summary, host, rule_id ON events BEGIN "
    "INSERT INTO events_fts(events_fts, rowid, summary, host, rule_id) "
    "VALUES ('delete', old.pk, old.summary, old.host, old.rule_id); "
    "INSERT INTO events_fts(rowid, summary, host, rule_id) "
    "VALUES (new.pk, new.summary, new.host, new.rule_id); END",
    # Events stored before the index existed.
    "INSERT INTO events_fts(events_fts) VALUES ('rebuild')",
)
SQLITE_FTS_DROP: Final = (
    "DROP TRIGGER IF EXISTS events_fts_update",
    "DROP TRIGGER IF EXISTS events_fts_delete",
    "DROP TRIGGER IF EXISTS events_fts_insert",
    "DROP TABLE IF EXISTS events_fts",
)
PG_TRIGRAM_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS ix_events_text_trgm ON events "
    "USING gin (summary gin_trgm_ops, host gin_trgm_ops, rule_id gin_trgm_ops)",
)

#: Trigram indexes need at least this many characters to narrow anything down.
MIN_INDEXED: Final = 3
#: Matches beyond which walking the listing's order beats fetching every match.
COMMON_TEXT: Final = 2_000


def is_declared(name: str | None, type_: str) -> bool:
    """For Alembic's comparison: objects of the trigram search live only in the migrations."""
    return not (type_ in ("table", "index") and name in NOT_DECLARED)


def fts_phrase(value: str) -> str:
    """``value`` as one FTS5 phrase: quotes doubled, so no query syntax reaches FTS5."""
    return '"' + value.replace('"', '""') + '"'


def _sqlite_has_fts(conn: Connection) -> bool:
    return conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (FTS_TABLE,)
    ).first() is not None


def event_text_condition(conn: Connection, value: str) -> tuple[Any, bool]:
    """The WHERE term for "summary, host or rule id contains ``value``" on this connection.

    On SQLite, selective text goes through ``events_fts``; common text (more than
    ``COMMON_TEXT`` matches) and text too short for trigrams are tested row by row
    in the listing's order. PostgreSQL's planner makes that choice itself, given
    the GIN index, so the condition is ILIKE there. The flag says whether the
    matches are few (found through the index): counting them is then cheap.
    """
    like = or_(*(column.icontains(value, autoescape=True)
                 for column in (events.c.summary, events.c.host, events.c.rule_id)))
    if conn.dialect.name != "sqlite" or len(value) < MIN_INDEXED or not _sqlite_has_fts(conn):
        return like, False
    phrase = fts_phrase(value)
    matches = conn.execute(
        text("SELECT count(*) FROM (SELECT rowid FROM events_fts "
             "WHERE events_fts MATCH :phrase LIMIT :limit)"),
        {"phrase": phrase, "limit": COMMON_TEXT + 1},
    ).scalar_one()
    if matches > COMMON_TEXT:
        return like, False
    return events.c.pk.in_(
        text("SELECT rowid FROM events_fts WHERE events_fts MATCH :phrase")
        .bindparams(phrase=phrase).columns(column("rowid", Integer))
    ), True
