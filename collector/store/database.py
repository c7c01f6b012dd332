"""The engine factory and the ``Database`` handle every store module writes through.

SQLite has one writer. Rather than let threads spin on ``database is locked``,
``Database.write()`` serialises write transactions in-process with a lock and
opens them with ``BEGIN IMMEDIATE``, so a transaction that reads before it
writes never has to upgrade its lock (which busy_timeout cannot retry). Other
processes (the CLI while ``serve`` runs) wait on busy_timeout.
PostgreSQL needs no lock: row locks (``SELECT ... FOR UPDATE``) order writers.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import NullPool

from collector.errors import StoreError, database_hint
from collector.messages import _
from collector.settings import CollectorSettings


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def redact(url: str) -> str:
    """The URL with any password replaced, fit for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def make_engine(
    database_url: str,
    *,
    sqlite_synchronous: str = "FULL",
    busy_timeout_ms: int = 10_000,
    pool_size: int = 10,
    single_connection: bool = False,
) -> Engine:
    """An engine configured for the collector: WAL and pragmas on SQLite, a pool on PostgreSQL."""
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise StoreError(f"database_url {database_url!r} is not a database URL: {exc}") from exc
    common: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        extra: dict[str, Any] = {"poolclass": NullPool} if single_connection else {}
        engine = create_engine(url, **common, **extra)
        _configure_sqlite(engine, sqlite_synchronous, busy_timeout_ms)
        return engine
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")  # the driver we ship
        if single_connection:
            return create_engine(url, poolclass=NullPool, **common)
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, **common)
        _ping_idle_connections(engine)
        return engine
    raise StoreError(
        _("unsupported database {backend!r}: use sqlite:///PATH or "
          "postgresql+psycopg://USER@HOST/DB").format(backend=url.get_backend_name()))


#: A pooled PostgreSQL connection idle longer than this is pinged before use.
PING_IDLE_S = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle (SQLAlchemy's recipe for
    custom pessimistic disconnect handling).

    A connection gone stale (PostgreSQL restarted, a firewall dropped it) has sat
    idle; one handed back milliseconds ago has not. ``pool_pre_ping`` pinged on every
    checkout: a round trip per transaction, under ingest several per batch.
    """

    @event.listens_for(engine, "checkin")
    def checked_in(_dbapi: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", -math.inf) < PING_IDLE_S:
            return
        try:
            # The dialect's own ping: outside any transaction (autocommit for its query).
            engine.dialect.do_ping(dbapi)
        except Exception as exc:
            # The pool drops this connection and checks out another (a fresh one).
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def _configure_sqlite(engine: Engine, synchronous: str, busy_timeout_ms: int) -> None:
    if synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise StoreError(f"sqlite_synchronous {synchronous!r} is not OFF, NORMAL, FULL or EXTRA")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling would defer BEGIN; we emit it ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("courtguard_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """An engine plus the write discipline its backend needs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.is_sqlite = self.dialect == "sqlite"
        self._write_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: CollectorSettings, single_connection: bool = False
    ) -> Database:
        return cls(
            make_engine(
                settings.database_url,
                sqlite_synchronous=settings.sqlite_synchronous,
                busy_timeout_ms=settings.sqlite_busy_timeout_ms,
                pool_size=settings.db_pool_size,
                single_connection=single_connection,
            )
        )

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read transaction, rolled back at the end."""
        with self._errors(), self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        lock = self._write_lock if self.is_sqlite else contextlib.nullcontext()
        with self._errors(), lock, self.engine.connect() as conn:
            conn.execution_options(courtguard_write=True)
            with conn.begin():
                yield conn

    def ping(self) -> None:
        """Run a trivial query; raise StoreError when the database does not answer."""
        with self.read() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreError(
                f"database {redact(str(self.engine.url))} failed: {reason}",
                hint=database_hint(reason),
            ) from exc
        except PoolTimeoutError as exc:
            # Every pooled connection busy for pool_timeout: overloaded, not a bad request.
            raise StoreError(
                f"database {redact(str(self.engine.url))}: no free connection in the pool"
            ) from exc
