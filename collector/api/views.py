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
