"""Evidence pcaps (取证抓包): resumable uploads from agents, orders from admins, downloads.

An upload, from the agent's side (``agent/evidence/uploader.py``):

1. ``open_upload`` declares the pcap (size, SHA-256) for one of the agent's
   own events and answers the offset the collector already holds, so an
   upload cut by a restart of either side resumes there;
2. ``append_chunk`` takes the bytes at exactly that offset (another offset is
   refused with where the upload stands), inside the declared size;
3. the chunk that completes the file makes the collector hash every byte it
   holds: a match marks the artifact ``complete``; a mismatch throws the bytes
   away and refuses, so the agent starts again from 0.

The bytes live in the database (``evidence_chunks``), not in a data
directory: collector processes behind a load balancer share nothing but the
store, and an upload's chunks may reach different processes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, and_, delete, insert, select, update

from collector.errors import EvidenceError
from collector.store import audit
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.tables import events, evidence_artifacts, evidence_chunks

#: Incomplete uploads and admins' orders no agent took up are dropped after this many days.
INCOMPLETE_DAYS: Final = 7.0


@dataclass(frozen=True)
class UploadState:
    """Where an upload stands: the bytes held, and whether the file is whole and verified."""

    offset: int
    size: int
    complete: bool


def _artifact(conn: Connection, agent_id: str, event_id: str, lock: bool = False) -> Any:
    query = select(evidence_artifacts).where(
        evidence_artifacts.c.agent_id == agent_id, evidence_artifacts.c.event_id == event_id
    )
    if lock:
        query = query.with_for_update()
    return conn.execute(query).first()


def _state(row: Any) -> UploadState:
    return UploadState(offset=row.received, size=row.size or 0, complete=row.state == "complete")


def open_upload(
    db: Database, agent_id: str, event_id: str, *, size: int, sha256: str, packets: int,
    max_bytes: int, now: datetime,
) -> UploadState:
    """Step 1: declare the pcap of one of ``agent_id``'s events; where the upload stands."""
    if size > max_bytes:
        raise EvidenceError(
            413, "evidence_too_large",
            f"the pcap is {size} bytes and this collector keeps at most {max_bytes}",
        )
    with db.write() as conn:
        owned = conn.execute(
            select(events.c.pk).where(events.c.agent_id == agent_id, events.c.id == event_id)
        ).first()
        if owned is None:
            raise EvidenceError(
                404, "event_not_found",
                "this agent has no such event here yet; upload after the event is shipped",
            )
        row = _artifact(conn, agent_id, event_id, lock=True)
        values = {"size": size, "sha256": sha256, "packets": packets, "updated_at": now}
        if row is None:
            conn.execute(insert(evidence_artifacts).values(
                agent_id=agent_id, event_id=event_id, state="uploading", received=0,
                created_at=now, **values))
            return UploadState(offset=0, size=size, complete=False)
        if row.state == "complete":
            if row.sha256 != sha256 or row.size != size:
                raise EvidenceError(
                    409, "evidence_complete",
                    "the collector already holds a different, verified pcap for this event",
                )
            return _state(row)
        if row.state == "uploading" and row.size == size and row.sha256 == sha256:
            return _state(row)
        # A new declaration (an admin's order taken up, or a pcap made again): from 0.
        conn.execute(delete(evidence_chunks).where(evidence_chunks.c.artifact_id == row.id))
        conn.execute(update(evidence_artifacts).where(evidence_artifacts.c.id == row.id)
                     .values(state="uploading", received=0, **values))
        return UploadState(offset=0, size=size, complete=False)


def append_chunk(
    db: Database, agent_id: str, event_id: str, offset: int, data: bytes, now: datetime
) -> UploadState:
    """Steps 2 and 3: store ``data`` at ``offset``; verify the file when it is whole."""
    with db.write() as conn:
        row = _artifact(conn, agent_id, event_id, lock=True)
        if row is None or row.state == "requested":
            raise EvidenceError(404, "upload_not_open", "declare the pcap first (POST)")
        if row.state == "complete":
            return _state(row)
        if offset != row.received:
            raise EvidenceError(
                409, "offset_mismatch",
                f"the collector holds {row.received} bytes; send from there", row.received,
            )
        if not data or offset + len(data) > row.size:
            raise EvidenceError(
                413, "chunk_past_end",
                f"the chunk ends past the declared size of {row.size} bytes", row.received,
            )
        conn.execute(insert(evidence_chunks).values(artifact_id=row.id, offset=offset, data=data))
        received = offset + len(data)
        values: dict[str, Any] = {"received": received, "updated_at": now}
        mismatch = received == row.size and _held_sha256(conn, row.id) != row.sha256
        if mismatch:
            conn.execute(delete(evidence_chunks).where(evidence_chunks.c.artifact_id == row.id))
            values["received"] = 0
        elif received == row.size:
            values.update(state="complete", completed_at=now)
        conn.execute(update(evidence_artifacts).where(evidence_artifacts.c.id == row.id)
                     .values(**values))
    if mismatch:  # raised after the commit: the reset must outlive the refusal
        raise EvidenceError(
            422, "hash_mismatch",
            "the bytes received do not have the declared SHA-256; they were discarded, "
            "send the file again from 0", 0,
        )
    return UploadState(offset=received, size=row.size, complete=received == row.size)


def _held_sha256(conn: Connection, artifact_id: int) -> str:
    digest = hashlib.sha256()
    rows = conn.execute(
        select(evidence_chunks.c.data).where(evidence_chunks.c.artifact_id == artifact_id)
        .order_by(evidence_chunks.c.offset)
    )
    for (data,) in rows:
        digest.update(data)
    return digest.hexdigest()


def request_capture(
    db: Database, event_id: str, order: dict[str, Any], actor: Actor, reason: str,
    now: datetime,
) -> str:
    """An admin's order for a capture on the host of ``event_id``; the agent's id."""
    with db.write() as conn:
        event = conn.execute(
            select(events.c.agent_id).where(events.c.id == event_id).limit(1)
        ).first()
        if event is None:
            raise EvidenceError(404, "event_not_found", "no such event")
        if _artifact(conn, event.agent_id, event_id) is not None:
            raise EvidenceError(409, "evidence_exists",
                                "this event already has a capture, ordered or received")
        conn.execute(insert(evidence_artifacts).values(
            agent_id=event.agent_id, event_id=event_id, state="requested",
            capture_order=order, requested_by=actor.name[:100], received=0,
            created_at=now, updated_at=now))
        audit.record(conn, actor, "evidence.capture", "event", event_id, now,
                     to_value=f"{order.get('duration_s')} s", reason=reason or None)
        return str(event.agent_id)


def pending_orders(db: Database, agent_id: str, limit: int = 16) -> list[dict[str, Any]]:
    """Admins' orders for ``agent_id`` it has not taken up yet, oldest first."""
    query = (
        select(evidence_artifacts.c.capture_order)
        .where(evidence_artifacts.c.agent_id == agent_id,
               evidence_artifacts.c.state == "requested")
        .order_by(evidence_artifacts.c.id).limit(limit)
    )
    with db.read() as conn:
        return [row.capture_order for row in conn.execute(query)]


def artifact_of_event(db: Database, event_id: str) -> dict[str, Any] | None:
    """The event's artifact as the console shows it, or None."""
    query = select(evidence_artifacts).where(evidence_artifacts.c.event_id == event_id).limit(1)
    with db.read() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return {
        "event_id": row.event_id, "agent_id": row.agent_id, "state": row.state,
        "size": row.size, "sha256": row.sha256, "packets": row.packets,
        "received": row.received, "requested_by": row.requested_by,
        "order": row.capture_order, "created_at": row.created_at,
        "completed_at": row.completed_at,
    }


def read_pcap(db: Database, event_id: str) -> Iterator[bytes]:
    """The verified pcap's bytes in order; empty when the event has no complete artifact."""
    with db.read() as conn:
        row = conn.execute(
            select(evidence_artifacts.c.id).where(
                evidence_artifacts.c.event_id == event_id,
                evidence_artifacts.c.state == "complete").limit(1)
        ).first()
        if row is None:
            return
        offsets = [r.offset for r in conn.execute(
            select(evidence_chunks.c.offset).where(evidence_chunks.c.artifact_id == row.id)
            .order_by(evidence_chunks.c.offset))]
    for offset in offsets:  # one chunk in memory at a time
        with db.read() as conn:
            yield conn.execute(select(evidence_chunks.c.data).where(
                evidence_chunks.c.artifact_id == row.id,
                evidence_chunks.c.offset == offset)).scalar_one()


def prune_evidence(db: Database, before: datetime | None, incomplete_before: datetime) -> int:
    """Drop artifacts made before ``before`` and unfinished ones before ``incomplete_before``."""
    c = evidence_artifacts.c
    old = c.state != "complete"
    condition = and_(old, c.created_at < incomplete_before)
    if before is not None:
        condition = (c.created_at < before) | condition
    with db.write() as conn:
        ids = [r.id for r in conn.execute(select(c.id).where(condition))]
        if ids:
            conn.execute(delete(evidence_chunks).where(evidence_chunks.c.artifact_id.in_(ids)))
            conn.execute(delete(evidence_artifacts).where(c.id.in_(ids)))
    return len(ids)


def audit_download(db: Database, event_id: str, actor: Actor, size: int, now: datetime) -> None:
    """Every download of a pcap leaves a row in the append-only audit log."""
    with db.write() as conn:
        audit.record(conn, actor, "evidence.download", "event", event_id, now,
                     to_value=f"{size} bytes")
