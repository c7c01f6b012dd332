"""The database half of a backup: a consistent copy out, and back into an empty store.

SQLite: the online backup API copies every page in one step under one read
transaction, so the copy is a consistent snapshot while ``serve`` goes on
writing (WAL lets it). PostgreSQL: ``pg_dump --format=custom`` (one snapshot
as well) and ``pg_restore`` in one transaction.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import make_url

from collector.backup import messages
from collector.errors import BackupError
from collector.messages import _
from collector.settings import CollectorSettings
from collector.store import migrate
from collector.store.database import Database, make_engine, redact


@contextmanager
def _store(settings_or_url: CollectorSettings | str) -> Iterator[Database]:
    if isinstance(settings_or_url, str):
        db = Database(make_engine(settings_or_url, single_connection=True))
    else:
        db = Database.from_settings(settings_or_url, single_connection=True)
    try:
        yield db
    finally:
        db.dispose()


def backend_of(database_url: str) -> str:
    """``sqlite`` or ``postgresql``; make_engine's error for anything else."""
    make_engine(database_url, single_connection=True).dispose()
    return "sqlite" if make_url(database_url).get_backend_name() == "sqlite" else "postgresql"


def _sqlite_path(database_url: str) -> Path:
    return Path(make_url(database_url).database or "")


def _libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """The URL as libpq reads it, and the environment carrying its password (never argv)."""
    url = make_url(database_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str, missing: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(missing)
    return found


def _failure(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {result.returncode}"


def dump_database(settings: CollectorSettings, out: Path) -> str:
    """Copy the database to ``out``; return the schema revision of the copy."""
    url = settings.database_url
    if backend_of(url) == "sqlite":
        source = _sqlite_path(url)
        if not source.is_file():
            raise BackupError(_(messages.SQLITE_MISSING).format(path=source))
        try:
            with closing(sqlite3.connect(source)) as live, \
                    closing(sqlite3.connect(out)) as copy:
                live.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
                live.backup(copy)  # pages=-1: every page in one step, one consistent snapshot
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                has_schema = copy.execute(
                    "SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone()
                row = copy.execute("SELECT version_num FROM alembic_version").fetchone() \
                    if has_schema else None
        except sqlite3.Error as exc:
            raise BackupError(_(messages.DATABASE_UNREADABLE).format(url=redact(url), reason=exc)) \
                from exc
        if row is None:
            raise BackupError(_(messages.NO_SCHEMA).format(url=redact(url)))
        return str(row[0])
    with _store(url) as db:
        revision = migrate.current_revision(db)
    if revision is None:
        raise BackupError(_(messages.NO_SCHEMA).format(url=redact(url)))
    conninfo, env = _libpq(url)
    pg_dump = _tool("pg_dump", _(messages.PG_DUMP_MISSING))
    result = subprocess.run(  # noqa: S603 (the tool found on PATH, arguments we built)
        [pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--file={out}",
         f"--dbname={conninfo}"],
        env=env, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise BackupError(_(messages.PG_DUMP_FAILED).format(url=redact(url),
                                                            reason=_failure(result)))
    return revision


def database_is_empty(settings: CollectorSettings) -> bool:
    url = settings.database_url
    if backend_of(url) == "sqlite":
        path = _sqlite_path(url)
        if not path.exists() or path.stat().st_size == 0:
            return True
    engine = make_engine(url, single_connection=True)
    try:
        with engine.connect() as conn:
            return not sa.inspect(conn).get_table_names()
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise BackupError(_(messages.DATABASE_UNREADABLE).format(url=redact(url), reason=reason)) \
            from exc
    finally:
        engine.dispose()


def restore_database(settings: CollectorSettings, dumped: Path, replace: bool) -> str | None:
    """Put ``dumped`` in place as the configured database, then migrate it to head."""
    url = settings.database_url
    if backend_of(url) == "sqlite":
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(target.name + ".partial")
        shutil.copyfile(dumped, staged)
        os.chmod(staged, 0o600)
        with open(staged, "rb") as handle:
            os.fsync(handle.fileno())
        # A replaced database's side files belong to the old contents.
        for side in ("-wal", "-shm", "-journal"):
            with suppress(FileNotFoundError):
                target.with_name(target.name + side).unlink()
        os.replace(staged, target)
    else:
        conninfo, env = _libpq(url)
        pg_restore = _tool("pg_restore", _(messages.PG_RESTORE_MISSING))
        clean = ["--clean", "--if-exists"] if replace else []
        result = subprocess.run(  # noqa: S603 (the tool found on PATH, arguments we built)
            [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error",
             "--single-transaction", *clean, f"--dbname={conninfo}", str(dumped)],
            env=env, capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise BackupError(_(messages.PG_RESTORE_FAILED).format(url=redact(url),
                                                           reason=_failure(result)))
    with _store(settings) as db:
        migrate.upgrade(db)
        return migrate.current_revision(db)
