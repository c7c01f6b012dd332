"""One agent as the read API, the console and ``agent list`` show it.

Below both ``collector.api.queries`` and ``collector.console.data`` so each
can import it without importing the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def agent_view(row: dict[str, Any], status: str) -> dict[str, Any]:
    """One agent as the API shows it, with the status the silent monitor decided."""
    beat = row["last_heartbeat"] or {}
    return {
        "id": row["id"],
        "hostname": row["hostname"],
        "group": row["group"],
        "os": row["os"],
        "status": status,
        "enrolled_at": _iso(row["enrolled_at"]),
        "last_seen_at": _iso(row["last_seen_at"]),
        "silent_since": _iso(row["silent_since"]),
        "revoked_at": _iso(row["revoked_at"]),
        "revoked_reason": row["revoked_reason"],
        "superseded_by": row.get("superseded_by"),
        "superseded_at": _iso(row.get("superseded_at")),
        "agent_version": row["agent_version"],
        "policy_version": row["policy_version"],
        "heartbeat_interval_s": row["heartbeat_interval_s"],
        "spool_depth": beat.get("spool_depth"),
        "spool_bytes": beat.get("spool_bytes"),
        "events_dropped": beat.get("events_dropped"),
        "detectors": beat.get("detectors", {}),
        "max_seq": row["max_seq"],
        "open_gaps": row["open_gaps"],
    }


def with_predecessors(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[Any]]]:
    """The current rows (not superseded), each with the rows it superseded, newest first.

    A host re-imaged twice has a chain A → B → C: C is listed once, with B and A.
    """
    by_id = {row["id"]: row for row in rows}
    earlier: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("superseded_by") in by_id:
            earlier.setdefault(row["superseded_by"], []).append(row)
    listing = []
    for row in rows:
        if row.get("superseded_by") is not None and row["superseded_by"] in by_id:
            continue
        chain: list[dict[str, Any]] = []
        seen = {row["id"]}
        frontier = [row["id"]]
        while frontier:
            found = [r for agent_id in frontier for r in earlier.get(agent_id, ())
                     if r["id"] not in seen]
            seen.update(r["id"] for r in found)
            chain.extend(found)
            frontier = [r["id"] for r in found]
        chain.sort(key=lambda r: r["enrolled_at"], reverse=True)
        listing.append((row, chain))
    return listing


def predecessor_view(row: dict[str, Any]) -> dict[str, Any]:
    """An earlier identity of a host, as listed under its current agent."""
    return {
        "id": row["id"],
        "hostname": row["hostname"],
        "enrolled_at": _iso(row["enrolled_at"]),
        "last_seen_at": _iso(row["last_seen_at"]),
        "superseded_at": _iso(row.get("superseded_at")),
        "superseded_by": row.get("superseded_by"),
        "agent_version": row["agent_version"],
    }
