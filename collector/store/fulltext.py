"""Free-text search through a trigram index: FTS5 on SQLite, pg_trgm on PostgreSQL.

Events are searched in summary, host and rule id; alerts in title, host, account and rule.

Both answer "contains this text" (case-insensitive) for text of three or more
characters from an index, whatever the language: a trigram index needs no word
boundaries, which Chinese summaries do not have. Shorter text is rare and
scans, bounded by the other filters.

SQLite keeps ``events_fts`` and ``alerts_fts`` (FTS5 tables over ``events``
and ``alerts`` as external content, rowid = ``events.pk`` / ``alerts.id``) up
to date by triggers, so every writer (ingest, collector-own events,
retention) keeps them without knowing. PostgreSQL keeps one GIN index over
each table's searched columns; migration 0014 creates them when
``CREATE EXTENSION pg_trgm`` succeeds.

The index pays off for selective text. Text that matches a large share of
the store is cheaper to find by walking the listing's own order and testing
each row, which finds a page of matches within the first few thousand rows:
``text_condition`` decides between the two from the matches' keys, read
from the index once (at most ``COMMON_TEXT + 1`` of them) and bound to the
listing as one JSON array, so the listing does not match again and the
planner's guess at how the matches spread over time does not decide what is
read. PostgreSQL asks its index only for the text's longer words
(``indexed_words``) and skips reading keys for text its statistics expect
everywhere (``_pg_estimate``).
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from sqlalchemy import Connection, Integer, and_, column, func, or_, select, text

from collector.store.tables import alerts, events

FTS_TABLE: Final = "events_fts"
ALERTS_FTS_TABLE: Final = "alerts_fts"
#: Index-only names the migrations make but ``tables.metadata`` does not declare.
NOT_DECLARED: Final = frozenset({
    *(f"{table}{part}" for table in (FTS_TABLE, ALERTS_FTS_TABLE)
      for part in ("", "_data", "_idx", "_docsize", "_config", "_content")),
    "ix_events_text_trgm", "ix_alerts_text_trgm"})

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
#: The alert list's text search: title, host, account, rule. Ingest's upsert changes none of
#: these columns on an existing alert, so the update trigger fires only when they change.
SQLITE_ALERTS_FTS_DDL: Final = (
    "CREATE VIRTUAL TABLE alerts_fts USING fts5(title, host, account, rule_id, "
    "content='alerts', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER alerts_fts_insert AFTER INSERT ON alerts BEGIN "
    "INSERT INTO alerts_fts(rowid, title, host, account, rule_id) "
    "VALUES (new.id, new.title, new.host, new.account, new.rule_id); END",
    "CREATE TRIGGER alerts_fts_delete AFTER DELETE ON alerts BEGIN "
    "INSERT INTO alerts_fts(alerts_fts, rowid, title, host, account, rule_id) "
    "VALUES ('delete', old.id, old.title, old.host, old.account, old.rule_id); END",
    "CREATE TRIGGER alerts_fts_update AFTER UPDATE OF title, host, account, rule_id ON alerts "
    "BEGIN INSERT INTO alerts_fts(alerts_fts, rowid, title, host, account, rule_id) "
    "VALUES ('delete', old.id, old.title, old.host, old.account, old.rule_id); "
    "INSERT INTO alerts_fts(rowid, title, host, account, rule_id) "
    "VALUES (new.id, new.title, new.host, new.account, new.rule_id); END",
    "INSERT INTO alerts_fts(alerts_fts) VALUES ('rebuild')",
)
SQLITE_ALERTS_FTS_DROP: Final = (
    "DROP TRIGGER IF EXISTS alerts_fts_update",
    "DROP TRIGGER IF EXISTS alerts_fts_delete",
    "DROP TRIGGER IF EXISTS alerts_fts_insert",
    "DROP TABLE IF EXISTS alerts_fts",
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
    "CREATE INDEX IF NOT EXISTS ix_alerts_text_trgm ON alerts USING gin "
    "(title gin_trgm_ops, host gin_trgm_ops, account gin_trgm_ops, rule_id gin_trgm_ops)",
)

#: Trigram indexes need at least this many characters to narrow anything down.
MIN_INDEXED: Final = 3
#: Matches beyond which walking the listing's order beats fetching every match: fetching
#: costs a row lookup per match, walking tests about ``page × rows ÷ matches`` rows. Above
#: this many the text is in at least 2 % of a million events, so a page of 51 is found
#: within the first few thousand rows of the walk.
COMMON_TEXT: Final = 20_000


def is_declared(name: str | None, type_: str) -> bool:
    """For Alembic's comparison: objects of the trigram search live only in the migrations."""
    return not (type_ in ("table", "index") and name in NOT_DECLARED)


def fts_phrase(value: str) -> str:
    """``value`` as one FTS5 phrase: quotes doubled, so no query syntax reaches FTS5."""
    return '"' + value.replace('"', '""') + '"'


def _sqlite_has(conn: Connection, table: str) -> bool:
    return conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).first() is not None


#: per searched table: its newest matches by arrival on SQLite (constant text), its key, its
#: columns. FTS5 reads its doclists backwards by rowid, so the query stops after ``:limit``
#: matches however many there are.
_SEARCHED: Final[dict[str, tuple[str, Any, tuple[Any, ...]]]] = {
    "events": (
        "SELECT rowid FROM events_fts WHERE events_fts MATCH :phrase "
        "ORDER BY rowid DESC LIMIT :limit",
        events.c.pk, (events.c.summary, events.c.host, events.c.rule_id)),
    "alerts": (
        "SELECT rowid FROM alerts_fts WHERE alerts_fts MATCH :phrase "
        "ORDER BY rowid DESC LIMIT :limit",
        alerts.c.id, (alerts.c.title, alerts.c.host, alerts.c.account, alerts.c.rule_id)),
}
PG_TRIGRAM_INDEX: Final = {"events": "ix_events_text_trgm", "alerts": "ix_alerts_text_trgm"}
#: A list of keys bound as one JSON array, however long, instead of one parameter each.
_LISTED_KEYS: Final = {
    "sqlite": "SELECT value FROM json_each(:keys)",
    "postgresql": "SELECT CAST(value AS bigint) AS value FROM json_array_elements_text("
                  "CAST(:keys AS json))",
}


def _newest(conn: Connection, table: str, value: str, limit: int) -> list[int]:
    """The keys of up to ``limit`` rows of ``table`` containing ``value``.

    On SQLite the newest by arrival, newest first. On PostgreSQL in no order: the GIN
    index yields its matches as a bitmap, so this is all of them when there are fewer
    than ``limit``, which is the only case its callers use the keys for.
    """
    if conn.dialect.name == "sqlite":
        return list(conn.execute(text(_SEARCHED[table][0]),
                                 {"phrase": fts_phrase(value), "limit": limit}).scalars())
    _sql, key, _columns = _SEARCHED[table]
    return list(conn.execute(select(key).where(contains(conn, table, value)).limit(limit))
                .scalars())


def _key_in(conn: Connection, key: Any, keys: list[int]) -> Any:
    listed = text(_LISTED_KEYS[conn.dialect.name]).bindparams(keys=orjson.dumps(keys).decode())
    return key.in_(listed.columns(column("value", Integer)))


def _pg_estimate(conn: Connection, table: str, value: str) -> float:
    """How many rows of ``table`` the planner expects to contain ``value`` (its statistics)."""
    query = select(_SEARCHED[table][1]).where(contains(conn, table, value))
    compiled = query.compile(dialect=conn.dialect)
    plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar_one()
    return float(plan[0]["Plan"]["Plan Rows"])


def _pg_has_index(conn: Connection, name: str) -> bool:
    return conn.exec_driver_sql(
        "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = %(name)s",
        {"name": name}).first() is not None


def _indexed(conn: Connection, table: str, value: str) -> bool:
    if len(value) < MIN_INDEXED:
        return False
    if conn.dialect.name == "sqlite":
        return _sqlite_has(conn, f"{table}_fts")
    return _pg_has_index(conn, PG_TRIGRAM_INDEX[table])


def indexed_words(value: str) -> list[str]:
    """The runs of letters and digits in ``value`` that trigrams can find cheaply.

    pg_trgm splits text into words at anything that is not a letter or digit and
    pads each word, so a word of one or two characters (``ws`` in ``ws-0042``, a
    court's host prefix) becomes trigrams like ``ws `` that nearly every row holds:
    the GIN index then merges posting lists of the whole table. Runs of three or
    more characters carry the selective trigrams.
    """
    words: list[str] = []
    current = ""
    for char in value:
        if char.isalnum():
            current += char
            continue
        if len(current) >= MIN_INDEXED:
            words.append(current)
        current = ""
    if len(current) >= MIN_INDEXED:
        words.append(current)
    return words


def contains(conn: Connection, table: str, value: str) -> Any:
    """The WHERE term "a searched column of ``table`` contains ``value``", as the index likes it.

    On PostgreSQL, when ``value`` holds words too short for selective trigrams
    (``indexed_words``), the index is asked only for its longer words in order
    (``%0042%`` for ``ws-0042``: every row holding the text holds them) and each
    candidate is then tested for the whole text (``strpos`` on ``lower``, what
    ``ILIKE`` compares, which no index answers, so the planner cannot send the
    common trigrams back to the index). Elsewhere a plain case-insensitive ``LIKE``.
    """
    _sql, _key, columns = _SEARCHED[table]
    like = or_(*(column.icontains(value, autoescape=True) for column in columns))
    words = indexed_words(value)
    if conn.dialect.name != "postgresql" or not words or words == [value]:
        return like
    pattern = "%" + "%".join(words) + "%"
    return and_(
        or_(*(column.ilike(pattern) for column in columns)),
        or_(*(func.strpos(func.lower(column), func.lower(value)) > 0 for column in columns)))


def event_text_condition(conn: Connection, value: str) -> tuple[Any, bool]:
    """The WHERE term for "summary, host or rule id contains ``value``"; see ``text_condition``."""
    return text_condition(conn, "events", value)


def text_condition(conn: Connection, table: str, value: str) -> tuple[Any, bool]:
    """The WHERE term for "a searched column of ``table`` contains ``value``" on this connection.

    Selective text goes through the table's trigram index (FTS5 on SQLite, the
    GIN index on PostgreSQL): the matches' keys are read from it once (at most
    ``COMMON_TEXT + 1``) and the listing reads those rows by key, so neither
    the listing's order nor the planner's guess at how many rows match decides
    how much is read. Common text (more than ``COMMON_TEXT`` matches, or on
    PostgreSQL that many expected by the planner's statistics) and text too
    short for trigrams are tested row by row in the listing's order. The
    flag says whether the matches are few (found through the index): counting
    them is then cheap.
    """
    key = _SEARCHED[table][1]
    like = contains(conn, table, value)
    if not _indexed(conn, table, value):
        return like, False
    if conn.dialect.name == "postgresql" and _pg_estimate(conn, table, value) > COMMON_TEXT:
        # Reading the keys costs PostgreSQL a heap row each, not an index entry as in
        # FTS5, so text the planner expects everywhere is not read through the index first.
        return like, False
    # One pass over the index: the matches' keys are kept, so the listing does not match again.
    keys = _newest(conn, table, value, COMMON_TEXT + 1)
    if len(keys) > COMMON_TEXT:
        return like, False
    return _key_in(conn, key, keys), True


def newest_event_matches(conn: Connection, value: str, window: int) -> tuple[Any, bool] | None:
    """The WHERE term for "one of the newest ``window`` events containing ``value``".

    Newest by arrival (``events.pk``), read backwards from the FTS5 index, so
    the work is at most ``window`` matches however common the text; the flag
    says whether more events contain it. None where there is no such index
    (PostgreSQL's GIN index yields matches in no order; text under three
    characters).
    """
    if conn.dialect.name != "sqlite" or not _indexed(conn, "events", value):
        return None
    keys = _newest(conn, "events", value, window + 1)
    return _key_in(conn, events.c.pk, keys[:window]), len(keys) > window
