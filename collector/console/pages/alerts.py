"""The alerts page, one alert, and the triage form (single and bulk)."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from agent.calendar_cn import SHANGHAI
from collector.alerts import service
from collector.api.bounds import StoreId
from collector.api.context import context
from collector.console import data
from collector.console import params as p
from collector.console.auth import ALL_ROLES, TRIAGE
from collector.console.page import (
    filter_values,
    next_url,
    open_page,
    render,
    safe_next,
    saved_filters,
    submit,
)

router = APIRouter()


ALERT_FIELDS: Final = ("since", "until", "min_severity", "host", "account", "rule_id", "q",
                       "assignee")


@router.get("/console/alerts")
async def alerts_page(request: Request) -> Response:
    page = await open_page(request, ALL_ROLES)
    params = request.query_params
    if "status" not in params and "all" not in params:
        # A duty officer's default view: what is still open.
        from starlette.datastructures import QueryParams

        params = QueryParams([*params.multi_items(), ("status", "new,acknowledged,in_progress")])
    try:
        listing = await run_in_threadpool(data.alerts_listing, page.db, params, SHANGHAI)
        error = None
    except p.FilterError as exc:
        listing, error = {"alerts": [], "next_cursor": None, "counts": {}}, str(exc)
    filters = filter_values(request, ALERT_FIELDS)
    filters["status"] = ",".join(params.getlist("status"))
    return render(page, request, "alerts.html", listing=listing, error=error, filters=filters,
                  next_url=next_url(request, listing["next_cursor"]),
                  can_triage=page.who.role in TRIAGE, saved=await saved_filters(page, "alerts"),
                  message=request.query_params.get("done"))


@router.get("/console/alerts/{alert_id}")
async def alert_page(request: Request, alert_id: StoreId) -> Response:
    page = await open_page(request, ALL_ROLES)
    detail = await run_in_threadpool(data.alert_detail, page.db, alert_id)
    if detail is None:
        return render(page, request, "error.html", 404, message=page.t("No such alert."))
    return render(page, request, "alert.html", **detail, can_triage=page.who.role in TRIAGE,
                  message=request.query_params.get("done"))


@router.post("/console/alerts/action")
async def alert_action(request: Request) -> Response:
    """One form for single and bulk actions: ``ids`` (repeated), ``action`` and its fields."""
    page, form = await submit(request, TRIAGE)
    ctx = context(request)

    def field(name: str) -> str | None:
        value = form.get(name)
        return value if isinstance(value, str) else None

    back = safe_next(field("back"))
    try:
        ids = p.ids([v for v in form.getlist("ids") if isinstance(v, str)])
        outcomes = await run_in_threadpool(
            service.transition, ctx.db, ids, field("action") or "", page.actor,
            assignee=field("assignee"), resolution=field("resolution"),
            comment=field("comment"), reason=field("reason"),
        )
    except (p.FilterError, service.AlertError) as exc:
        detail = exc.detail if isinstance(exc, service.AlertError) else str(exc)
        return render(page, request, "error.html", 422, message=detail, back=back)
    ctx.alert_feed.poke()
    done = sum(o.ok for o in outcomes)
    refused = [o for o in outcomes if not o.ok]
    if refused:
        return render(page, request, "action_result.html", 200 if done else 409,
                      done=done, refused=refused, back=back)
    separator = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{separator}{urlencode({'done': done})}", 303)
