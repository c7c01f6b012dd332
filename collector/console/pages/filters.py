"""Saved filters of the events and alerts pages: save one, delete one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from agent.events import utcnow
from collector.api.bounds import StoreId
from collector.console.auth import ALL_ROLES
from collector.console.page import render, submit

router = APIRouter()


@router.post("/console/filters")
async def save_filter(request: Request) -> Response:
    from collector.console.saved import save

    page, form = await submit(request, ALL_ROLES)
    scope, name, query = (str(form.get(k) or "") for k in ("scope", "name", "query"))
    try:
        await run_in_threadpool(save, page.db, page.user_id, scope, name, query,
                                utcnow())
    except ValueError as exc:
        return render(page, request, "error.html", 422, message=str(exc))
    return RedirectResponse(f"/console/{scope}?{query}", 303)


@router.post("/console/filters/{filter_id}/delete")
async def delete_filter(request: Request, filter_id: StoreId) -> Response:
    from collector.console.saved import delete

    page, _form = await submit(request, ALL_ROLES)
    scope = await run_in_threadpool(delete, page.db, page.user_id, filter_id)
    return RedirectResponse(f"/console/{scope or 'events'}", 303)
