"""API keys for operators and scripts reading the collector's API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import insert, select

from collector import credentials
from collector.store.database import Database
from collector.store.tables import api_keys

#: As console users (collector/console/users.py).
ROLES: Final = ("admin", "reviewer", "auditor", "clerk")


@dataclass(frozen=True)
class ApiKeyInfo:
    id: str
    name: str
    role: str


def create_api_key(db: Database, *, name: str, role: str, now: datetime) -> tuple[str, str]:
    """Make a key; return (id, key). The key is shown once and only its hash is kept."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    key = credentials.new_api_key()
    key_id = str(uuid.uuid4())
    with db.write() as conn:
        conn.execute(
            insert(api_keys).values(
                id=key_id, name=name, key_hash=credentials.digest(key), role=role, created_at=now
            )
        )
    return key_id, key


def has_active_key(db: Database, role: str) -> bool:
    with db.read() as conn:
        row = conn.execute(
            select(api_keys.c.id)
            .where(api_keys.c.role == role, api_keys.c.revoked_at.is_(None))
            .limit(1)
        ).first()
    return row is not None


def authenticate_api_key(db: Database, key: str) -> ApiKeyInfo | None:
    """The live key matching ``key``, or None."""
    with db.read() as conn:
        row = conn.execute(
            select(api_keys.c.id, api_keys.c.name, api_keys.c.role, api_keys.c.key_hash)
            .where(api_keys.c.key_hash == credentials.digest(key), api_keys.c.revoked_at.is_(None))
        ).first()
    if row is None or not credentials.matches(key, row.key_hash):
        return None
    return ApiKeyInfo(row.id, row.name, row.role)
