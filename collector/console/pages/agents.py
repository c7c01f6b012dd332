"""The agents page: status, degraded detectors, the key-period alarm."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from agent.events import utcnow
from collector.console import data
from collector.console.auth import ALL_ROLES
from collector.console.page import open_page, render

router = APIRouter()


@router.get("/console/agents")
async def agents_page(request: Request) -> Response:
    page = await open_page(request, ALL_ROLES)
    listing = await run_in_threadpool(
        data.agents_listing, page.db, request.app.state.monitor,
        request.app.state.work_calendar(), utcnow())
    return render(page, request, "agents.html", **listing)
