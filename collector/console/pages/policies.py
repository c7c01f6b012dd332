"""The policies page: versions, who runs which, which verify."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from collector.console.auth import AUDIT
from collector.console.page import open_page, render

router = APIRouter()


@router.get("/console/policies")
async def policies_page(request: Request) -> Response:
    from collector.policy.status import policy_status

    page = await open_page(request, AUDIT)
    status = await run_in_threadpool(policy_status, page.db,
                                     request.app.state.courtguard.policy_key)
    return render(page, request, "policies.html", status=status)
