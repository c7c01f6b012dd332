"""Saved filters: a user's named query strings for the events and alerts lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete as sql_delete
from sqlalchemy import insert, select

from collector.store.database import Database
from collector.store.tables import saved_filters

SCOPES: Final = ("events", "alerts")
MAX_PER_USER: Final = 100


def list_filters(db: Database, user_id: str, scope: str) -> list[dict[str, Any]]:
    c = saved_filters.c
    with db.read() as conn:
        rows = conn.execute(select(c.id, c.name, c.query)
                            .where(c.user_id == user_id, c.scope == scope).order_by(c.name))
        return [dict(row._mapping) for row in rows]


def save(db: Database, user_id: str, scope: str, name: str, query: str, now: datetime) -> None:
    """Save (or replace) the filter ``name``; raises ValueError on bad input."""
    name = name.strip()
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    if not name or len(name) > 100:
        raise ValueError("a filter needs a name of 1-100 characters")
    if len(query) > 2000 or "\n" in query or "\r" in query:
        raise ValueError("the filter's query is too long or malformed")
    query = "&".join(part for part in query.split("&") if not part.startswith("cursor="))
    c = saved_filters.c
    with db.write() as conn:
        conn.execute(sql_delete(saved_filters).where(c.user_id == user_id, c.scope == scope,
                                                     c.name == name))
        count = len(conn.execute(select(c.id).where(c.user_id == user_id)).all())
        if count >= MAX_PER_USER:
            raise ValueError(f"at most {MAX_PER_USER} saved filters per user")
        conn.execute(insert(saved_filters).values(user_id=user_id, scope=scope, name=name,
                                                  query=query, created_at=now))


def delete(db: Database, user_id: str, filter_id: int) -> str | None:
    """Delete one of the user's own filters; return its scope (None if it was not theirs)."""
    c = saved_filters.c
    with db.write() as conn:
        scope = conn.execute(select(c.scope).where(c.id == filter_id, c.user_id == user_id)
                             ).scalar()
        conn.execute(sql_delete(saved_filters).where(c.id == filter_id, c.user_id == user_id))
    return scope
