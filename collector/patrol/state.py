"""What the patrol last saw of each document, in ``patrol_documents``.

One row per (source, document). A row is written after its document was
handled, so a pass cut short by a stop or a crash re-reads at most the
documents it had not finished; the event ids are derived from the content, so
even then nothing is raised twice.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import and_, delete, insert, select

from collector.patrol.listing import Seen
from collector.store.database import Database
from collector.store.tables import patrol_documents

_COLUMNS = ("etag", "last_modified", "size", "mtime_ns", "sha256", "verdict", "error", "event_id")


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def load(db: Database, source: str) -> dict[str, Seen]:
    """Every document of ``source`` the patrol has seen, by key."""
    t = patrol_documents.c
    with db.read() as conn:
        rows = conn.execute(select(patrol_documents).where(t.source == source)).mappings().all()
    return {row["key"]: Seen(key=row["key"], **{c: row[c] for c in _COLUMNS}) for row in rows}


def save(db: Database, source: str, seen: Seen, now: datetime) -> None:
    t = patrol_documents.c
    digest = key_digest(seen.key)
    values = {c: getattr(seen, c) for c in _COLUMNS}
    with db.write() as conn:
        conn.execute(delete(patrol_documents).where(and_(t.source == source,
                                                         t.key_sha256 == digest)))
        conn.execute(insert(patrol_documents).values(
            source=source, key_sha256=digest, key=seen.key, checked_at=now, **values))


def forget(db: Database, source: str, key: str) -> None:
    t = patrol_documents.c
    with db.write() as conn:
        conn.execute(delete(patrol_documents).where(and_(t.source == source,
                                                         t.key_sha256 == key_digest(key))))
