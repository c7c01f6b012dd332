"""The append-only audit log: who changed what, when, from what to what, why, from where.

Only ``record`` and ``record_each`` write it (INSERTs); nothing in the code updates or deletes a
row, and on PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE outright.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select

from collector.store.database import Database
from collector.store.filters import equal_to, within
from collector.store.tables import audit_log


@dataclass(frozen=True)
class Actor:
    """Who acts: a console user, an API key's name, or ``system``; ``via`` names the channel."""

    name: str
    via: str = "console"
    client_address: str | None = None


def record(
    conn: Connection,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    now: datetime,
    *,
    from_value: str | None = None,
    to_value: str | None = None,
    reason: str | None = None,
) -> None:
    conn.execute(
        insert(audit_log).values(
            at=now,
            actor=actor.name[:100],
            via=actor.via[:64],
            action=action,
            object_type=object_type,
            object_id=object_id,
            from_value=from_value,
            to_value=to_value,
            reason=reason,
            client_address=actor.client_address,
        )
    )


def record_each(
    conn: Connection,
    actor: Actor,
    action: str,
    object_type: str,
    object_ids: Sequence[str],
    now: datetime,
    *,
    to_value: str | None = None,
) -> None:
    """``record`` for each of several objects, as one statement."""
    if not object_ids:
        return
    conn.execute(insert(audit_log), [
        {"at": now, "actor": actor.name[:100], "via": actor.via[:64], "action": action,
         "object_type": object_type, "object_id": object_id, "from_value": None,
         "to_value": to_value, "reason": None, "client_address": actor.client_address}
        for object_id in object_ids
    ])


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def query_audit(
    db: Database, where: AuditFilter, limit: int, before_id: int | None = None
) -> list[dict[str, Any]]:
    """Up to ``limit`` entries newest first, with ids below ``before_id``."""
    c = audit_log.c
    conditions: list[Any] = [
        *equal_to((c.actor, where.actor), (c.action, where.action),
                  (c.object_type, where.object_type), (c.object_id, where.object_id)),
        *within(c.at, where.since, where.until),
    ]
    if before_id is not None:
        conditions.append(c.id < before_id)
    query = select(audit_log).where(and_(True, *conditions)).order_by(c.id.desc()).limit(limit)
    with db.read() as conn:
        return [_public(row._mapping) for row in conn.execute(query)]


def entries_for(db: Database, object_type: str, object_ids: Sequence[str]) -> list[dict[str, Any]]:
    c = audit_log.c
    query = (
        select(audit_log)
        .where(c.object_type == object_type, c.object_id.in_(list(object_ids)))
        .order_by(c.id)
    )
    with db.read() as conn:
        return [_public(row._mapping) for row in conn.execute(query)]


def _public(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": row["at"].isoformat(),
        "actor": row["actor"],
        "via": row["via"],
        "action": row["action"],
        "object_type": row["object_type"],
        "object_id": row["object_id"],
        "from": row["from_value"],
        "to": row["to_value"],
        "reason": row["reason"],
        "client_address": row["client_address"],
    }
