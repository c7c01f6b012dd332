"""Events the collector raises about itself (``collector.*``), stored like an agent's.

Every event names an agent, so these belong to the collector's own row in
``agents`` (``store.agents.COLLECTOR_SOURCE_ID``), made in the same
transaction when missing. Callers derive the id from what the event is about,
so several collector processes, or a restart, store it once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from agent.events import Event, Severity
from collector.store.agents import (
    COLLECTOR_SOURCE_HOST,
    COLLECTOR_SOURCE_ID,
    ensure_collector_source,
)
from collector.store.database import Database
from collector.store.events import insert_event


def store_collector_event(
    db: Database, *, event_id: uuid.UUID, kind: str, severity: Severity, summary: str,
    evidence: dict[str, Any], policy_version: str | None, now: datetime,
) -> Event | None:
    """Store one collector event; the event, or None when this id is already stored."""
    event = Event(
        id=event_id, seq=None, time=now, agent_id=uuid.UUID(COLLECTOR_SOURCE_ID),
        host=COLLECTOR_SOURCE_HOST, kind=kind, severity=severity, rule_id=None,
        policy_version=policy_version, summary=summary, evidence=evidence,
    )
    with db.write() as conn:
        ensure_collector_source(conn, db.dialect, now)
        made = insert_event(conn, db.dialect, event, now)
    return event if made else None
