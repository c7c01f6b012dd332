"""The audit trail page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from agent.calendar_cn import SHANGHAI
from collector.console import data, i18n
from collector.console import params as p
from collector.console.auth import AUDIT
from collector.console.page import next_url, open_page, render
from collector.console.pages.alerts import audit_value

router = APIRouter()


@router.get("/console/audit")
async def audit_page(request: Request) -> Response:
    page = await open_page(request, AUDIT)
    try:
        listing = await run_in_threadpool(data.audit_listing, page.db, request.query_params,
                                          SHANGHAI)
        error = None
    except p.FilterError as exc:
        listing, error = {"entries": [], "next_cursor": None, "names": {}}, str(exc)
    q = request.query_params
    names = listing["names"]
    return render(page, request, "audit.html", listing=listing, error=error,
                  audit_value=lambda action, value: audit_value(page.t, names, action, value),
                  has_word=i18n.has,
                  filters={k: q.get(k, "") for k in ("actor", "action", "object_type",
                                                      "object_id", "since", "until")},
                  next_url=next_url(request, listing["next_cursor"]))
