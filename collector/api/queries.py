"""The read API (and alert triage) for scripts and for the console's pages.

Callers authenticate with an API key (any role: admin, reviewer, auditor) or a
console session. Each endpoint returns the dict the matching console page
renders (``collector.console.data``), with the same query parameters, so a
page and its JSON cannot drift apart. Triage is a POST with a JSON body; a
session must send its CSRF token in ``X-CSRF-Token``. Times in query
parameters without a zone are UTC here (Asia/Shanghai on the pages).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from agent.calendar_cn import SHANGHAI
from agent.events import utcnow
from collector.alerts import service
from collector.api.body import read_limited
from collector.api.bounds import StoreId, check_json_text
from collector.api.context import context
from collector.api.responses import json_response
from collector.console import data
from collector.console import params as p
from collector.console.auth import ALL_ROLES, AUDIT, TRIAGE, check_csrf, require
from collector.errors import ApiError

router = APIRouter()
MAX_ACTION_BYTES = 256 * 1024


def _invalid(exc: p.FilterError) -> ApiError:
    return ApiError(422, "invalid_request", str(exc),
                    [{"loc": ["query", exc.field], "msg": exc.msg}])


async def _call(function: Any, *args: Any) -> Any:
    try:
        return await run_in_threadpool(function, *args)
    except p.FilterError as exc:
        raise _invalid(exc) from None


@router.get("/api/v1/events")
async def list_events(request: Request) -> Response:
    """``{events, next_cursor, counts}``; ``counts=false`` skips the per-severity counts."""
    await require(request, ALL_ROLES)
    counts = request.query_params.get("counts", "true").lower() != "false"
    listing = await _call(data.events_listing, context(request).db, request.query_params,
                          UTC, counts)
    return json_response(listing)


@router.get("/api/v1/events/{event_id}")
async def event(request: Request, event_id: str) -> Response:
    await require(request, ALL_ROLES)
    detail = await run_in_threadpool(data.event_detail, context(request).db, event_id)
    if detail is None:
        raise ApiError(404, "not_found", f"no event {event_id}")
    return json_response(detail)


@router.get("/api/v1/alerts")
async def list_alerts(request: Request) -> Response:
    await require(request, ALL_ROLES)
    return json_response(await _call(data.alerts_listing, context(request).db,
                                     request.query_params, UTC))


@router.get("/api/v1/alerts/{alert_id}")
async def alert(request: Request, alert_id: StoreId) -> Response:
    await require(request, ALL_ROLES)
    detail = await run_in_threadpool(data.alert_detail, context(request).db, alert_id)
    if detail is None:
        raise ApiError(404, "not_found", f"no alert {alert_id}")
    return json_response(detail)


@router.post("/api/v1/alerts/{action}")
async def alert_action(request: Request, action: str) -> Response:
    """Body ``{ids: [..], assignee?, resolution?, comment?, reason?}`` → ``{outcomes: [..]}``."""
    who = await require(request, TRIAGE)
    check_csrf(who, request.headers.get("x-csrf-token"))
    raw = await read_limited(request, MAX_ACTION_BYTES)
    try:
        body = check_json_text(orjson.loads(raw))
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"the body's text {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
        raise ApiError(422, "invalid_request", "the body must be an object with a list `ids`")
    fields = {k: body.get(k) for k in ("assignee", "resolution", "comment", "reason")}
    for key, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise ApiError(422, "invalid_request", f"{key} must be a string")
    try:
        ids = p.ids([str(v) for v in body["ids"]])
        outcomes = await run_in_threadpool(
            lambda: service.transition(context(request).db, ids, action,
                                       who.actor(request), **fields))
    except p.FilterError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    except service.AlertError as exc:
        raise ApiError(422, exc.code, exc.detail) from None
    context(request).alert_feed.poke()
    return json_response({"outcomes": [o.__dict__ for o in outcomes]})


@router.get("/api/v1/audit")
async def audit_log(request: Request) -> Response:
    await require(request, AUDIT)
    return json_response(await _call(data.audit_listing, context(request).db,
                                     request.query_params, UTC))


@router.get("/api/v1/agents")
async def agents(request: Request) -> Response:
    """Every agent: status, silent since, degraded detectors, versions, spool, key-period alarm."""
    await require(request, ALL_ROLES)
    listing = await run_in_threadpool(
        data.agents_listing, context(request).db, request.app.state.monitor,
        request.app.state.work_calendar(), utcnow())
    return json_response(listing)


@router.get("/api/v1/reports/summary")
async def report(request: Request) -> Response:
    """``period=day|month``, ``date=YYYY-MM-DD`` (default today in Asia/Shanghai)."""
    await require(request, ALL_ROLES)
    today = utcnow().astimezone(SHANGHAI).date()
    return json_response(await _call(data.report, context(request).db, request.query_params,
                                     today))
