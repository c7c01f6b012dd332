"""PostgreSQL for tests and benchmarks: the server to use and fresh databases on it."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Final

import sqlalchemy as sa

DEFAULT_PG_URL: Final = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    """The server named by COURTGUARD_TEST_PG_URL (trust auth on CI machines)."""
    return os.environ.get("COURTGUARD_TEST_PG_URL", DEFAULT_PG_URL)


def unreachable_reason(url: str) -> str | None:
    """Why the server cannot be used, or None when it answers."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except sa.exc.OperationalError as exc:
        return str(exc.orig or exc).strip().splitlines()[0]
    finally:
        engine.dispose()


@contextlib.contextmanager
def postgres_database(url: str = DEFAULT_PG_URL) -> Iterator[str]:
    """A fresh database on ``url``'s server, dropped (connections and all) afterwards."""
    name = f"cg_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield sa.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
