"""What operators and scripts call with an admin API key: the event listing and the agent list."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from agent.events import KIND_PATTERN, RULE_ID_PATTERN, Severity, utcnow
from collector.api.auth import require_admin
from collector.api.context import context
from collector.api.responses import json_response
from collector.errors import ApiError
from collector.store.agents import list_agents
from collector.store.events import EventFilter, query_events

router = APIRouter(dependencies=[Depends(require_admin)])

MAX_LIMIT = 1000
_SEVERITIES = ", ".join(s.value for s in Severity)


def _unprocessable(field: str, msg: str) -> ApiError:
    return ApiError(422, "invalid_request", f"{field}: {msg}", [{"loc": ["query", field],
                                                                 "msg": msg}])


def _split(values: list[str] | None) -> list[str]:
    """Repeated parameters and comma lists alike: ``?kind=a&kind=b,c``."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _severity(field: str, value: str) -> Severity:
    try:
        return Severity(value.strip().lower())
    except ValueError:
        raise _unprocessable(field, f"{value!r} is not one of {_SEVERITIES}") from None


def _aware(value: datetime | None) -> datetime | None:
    """Times without a zone are taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def encode_cursor(time: str, event_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([time, event_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        time, event_id = orjson.loads(raw)
        when = datetime.fromisoformat(time)
        if when.tzinfo is None:
            raise ValueError("naive time")
        return when, str(uuid.UUID(event_id))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise _unprocessable("cursor", "not a cursor this API returned") from None


@router.get("/api/v1/events")
async def list_events(
    request: Request,
    kind: Annotated[list[str] | None, Query()] = None,
    severity: Annotated[list[str] | None, Query()] = None,
    min_severity: str | None = None,
    host: Annotated[str | None, Query(max_length=253)] = None,
    agent_id: uuid.UUID | None = None,
    rule_id: Annotated[str | None, Query(pattern=RULE_ID_PATTERN, max_length=128)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """Events newest first, filtered, in pages joined by ``next_cursor``."""
    kinds = _split(kind)
    for value in kinds:
        if not re.fullmatch(KIND_PATTERN, value) or len(value) > 64:
            raise _unprocessable("kind", f"{value!r} is not an event kind like outreach.connection")
    where = EventFilter(
        kinds=kinds,
        severities=[_severity("severity", v).rank for v in _split(severity)],
        min_severity=_severity("min_severity", min_severity).rank if min_severity else None,
        host=host,
        agent_id=str(agent_id) if agent_id else None,
        rule_id=rule_id,
        since=_aware(since),
        until=_aware(until),
    )
    after = decode_cursor(cursor) if cursor else None
    rows = await run_in_threadpool(query_events, context(request).db, where, limit + 1, after)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["time"], rows[-1]["id"])
    return json_response({"events": rows, "next_cursor": next_cursor})


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


@router.get("/api/v1/agents")
async def agents(request: Request) -> Response:
    """Every enrolled agent with its status, last heartbeat's health and open sequence gaps."""
    ctx = context(request)
    rows = await run_in_threadpool(list_agents, ctx.db)
    now, monitor = utcnow(), request.app.state.monitor
    views = [agent_view(row, monitor.status_of(row, now)) for row in rows]
    return json_response({"agents": views})
