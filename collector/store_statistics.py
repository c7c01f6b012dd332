"""Planner statistics: on SQLite, ANALYZE runs again when a listed table grew or shrank a lot.

SQLite's query planner chooses between indexes from ``sqlite_stat1``.
Migration 0005 analyzed ``events`` and ``alerts`` while they were still empty,
which leaves no statistics for them; on a store that then grows through
ingest the planner may count a host's events through the severity index
(500–800 ms on 108,000 events instead of 45 ms). SQLite 3.46's
``PRAGMA optimize=0x10002`` would notice, but the SQLite that Debian 12's
Python links is 3.40, whose ``optimize`` only looks at tables the same
connection has queried and only after 25-fold growth. So the collector checks:

1. every ``interval_s``, compare each listed table's row count with the count
   its statistics were taken at;
2. analyze the tables that have rows but no statistics, or whose count moved
   beyond a factor of ``DRIFT``: a full ANALYZE, which reads every index once
   (0.75 s for 100,000 events on a loaded machine) while ingest waits for the
   write lock; ``PRAGMA analysis_limit`` would bound that, but it samples each
   index from its start, and with 40 accounts the first thousand entries all
   hold one account, so the planner kept the severity index for accounts;
3. dispose of the connection pool: an open SQLite connection keeps the
   statistics it read when it opened, so the pool's connections open anew.

PostgreSQL's autovacuum analyzes a table once about a tenth of it changed
(``autovacuum_analyze_scale_factor``), so there the task only checks, once,
that autovacuum runs, and warns when it does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import structlog
from sqlalchemy import Connection, text

from collector.periodic import run_periodically
from collector.store.database import Database
from collector.store.leases import LeaseKeeper
from collector.worker_threads import finish_in_thread

log = structlog.get_logger("collector.store_statistics")

#: The tables the console and the read API filter through indexes.
TABLES: Final = ("events", "alerts", "alert_events")
#: A table is analyzed again when its row count moved beyond this factor either way.
DRIFT: Final = 2.0


@dataclass(frozen=True)
class TableCount:
    table: str
    rows: int
    #: The row count ``sqlite_stat1`` holds for the table, None without statistics.
    analyzed_rows: int | None

    @property
    def stale(self) -> bool:
        if self.analyzed_rows is None:
            return self.rows > 0
        low, high = sorted((max(self.rows, 1), max(self.analyzed_rows, 1)))
        return high > low * DRIFT


def _analyzed_rows(conn: Connection, table: str) -> int | None:
    """The largest row count among the table's ``sqlite_stat1`` rows (None: no statistics)."""
    has_stat1 = conn.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
    ).first()
    if has_stat1 is None:
        return None
    stats = conn.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = :t"), {"t": table})
    counts = [int(stat.split()[0]) for (stat,) in stats if stat and stat.split()[0].isdigit()]
    return max(counts) if counts else None


def table_counts(db: Database, analyzed: Mapping[str, int] | None = None) -> list[TableCount]:
    """Each listed table's row count now and at its last ANALYZE (SQLite only).

    ``analyzed`` holds the counts of this process' own passes; without one, the
    count comes from ``sqlite_stat1``.
    """
    known = analyzed or {}
    with db.read() as conn:
        return [
            TableCount(
                table,
                int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()),  # noqa: S608 (a table name from TABLES)
                known[table] if table in known else _analyzed_rows(conn, table),
            )
            for table in TABLES
        ]


def refresh(db: Database, analyzed: dict[str, int] | None = None) -> list[TableCount]:
    """Steps 1–3 on SQLite: analyze the stale tables, note their counts in ``analyzed``."""
    stale = [count for count in table_counts(db, analyzed) if count.stale]
    if not stale:
        return []
    with db.write() as conn:
        for count in stale:
            conn.exec_driver_sql(f"ANALYZE {count.table}")
    db.engine.dispose()
    if analyzed is not None:
        analyzed.update({count.table: count.rows for count in stale})
    log.info(
        "planner statistics refreshed",
        tables={c.table: {"rows": c.rows, "analyzed_rows": c.analyzed_rows} for c in stale},
    )
    return stale


def autovacuum_runs(db: Database) -> bool:
    """PostgreSQL: whether autovacuum (and the row counts it needs) is on."""
    with db.read() as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                text("SELECT name, setting FROM pg_settings "
                     "WHERE name IN ('autovacuum', 'track_counts')")
            ).all()
        )
    return settings.get("autovacuum") == "on" and settings.get("track_counts") == "on"


class StatisticsTask:
    """Keeps planner statistics fresh: ``refresh`` on SQLite, an autovacuum check on PostgreSQL."""

    def __init__(self, db: Database, interval_s: float) -> None:
        self.db = db
        self.interval_s = interval_s
        #: Row counts at this process' own ANALYZE passes.
        self.analyzed: dict[str, int] = {}

    def run_once(self) -> list[TableCount]:
        return refresh(self.db, self.analyzed) if self.db.is_sqlite else []

    async def run(self, leases: LeaseKeeper | None = None) -> None:
        """Check a minute after start (sooner with a short interval), then every ``interval_s``."""
        if not self.db.is_sqlite:
            try:
                runs = await finish_in_thread(autovacuum_runs, self.db)
            except Exception as exc:
                log.error("could not read PostgreSQL's autovacuum setting", error=str(exc))
                return
            if not runs:
                log.warning(
                    "PostgreSQL autovacuum is off: planner statistics for events go stale "
                    "as the store grows; turn autovacuum (and track_counts) on, "
                    "or run ANALYZE regularly"
                )
            return
        await run_periodically(
            "planner statistics check", self.run_once, self.interval_s,
            first_after_s=min(60.0, self.interval_s),
            leases=leases, lease="planner-statistics",
        )
