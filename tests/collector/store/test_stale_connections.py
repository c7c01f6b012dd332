"""A pooled PostgreSQL connection that died while idle is replaced before use, unseen."""

from __future__ import annotations

import time

import sqlalchemy as sa

from collector.store import database
from collector.store.database import make_engine
from tests.postgres import postgres_database


def test_a_connection_killed_while_idle_is_replaced(pg_server_url: str) -> None:
    with postgres_database(pg_server_url) as url:
        engine = make_engine(url, pool_size=1)
        killer = make_engine(url, single_connection=True)
        try:
            with engine.connect() as conn:
                first = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            with killer.begin() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            # Idle past the threshold: the next checkout pings it, finds it gone and
            # hands out a fresh connection instead of failing the transaction.
            time.sleep(database.PING_IDLE_S * 1.5)
            with engine.begin() as conn:
                again = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            assert again != first
        finally:
            engine.dispose()
            killer.dispose()
