"""What load balancers and Prometheus call: /healthz and /metrics, without authentication."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from agent.events import utcnow
from collector.api.context import context
from collector.api.responses import error_response, json_response
from collector.errors import StoreError
from collector.store.agents import list_agents

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> Response:
    """200 when the database answers a trivial query, 503 otherwise."""
    try:
        await run_in_threadpool(context(request).db.ping)
    except StoreError:
        return error_response(503, "unhealthy", "the database does not answer")
    return json_response({"status": "ok"})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's counters and the agents by status."""
    ctx = context(request)
    rows = await run_in_threadpool(list_agents, ctx.db)
    now, monitor = utcnow(), request.app.state.monitor
    counts = Counter(monitor.status_of(row, now) for row in rows)
    return Response(ctx.metrics.render(dict(counts)), media_type=CONTENT_TYPE_LATEST)
