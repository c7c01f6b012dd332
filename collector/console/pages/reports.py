"""The daily and monthly reports, as a page with charts and as CSV."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from agent.calendar_cn import SHANGHAI
from agent.events import utcnow
from collector.console import data, i18n
from collector.console import params as p
from collector.console.auth import ALL_ROLES
from collector.console.page import SECURITY_HEADERS, Page, open_page, render

router = APIRouter()


async def _report(page: Page, request: Request) -> dict[str, Any] | Response:
    """The report the query asks for, or the error page saying which parameter is wrong."""
    today = utcnow().astimezone(SHANGHAI).date()
    try:
        summary: dict[str, Any] = await run_in_threadpool(
            data.report, page.db, request.query_params, today)
    except p.FilterError as exc:
        return render(page, request, "error.html", 422, message=str(exc))
    return summary


@router.get("/console/reports")
async def reports_page(request: Request) -> Response:
    from collector.console.charts import bars, stacked_days

    page = await open_page(request, ALL_ROLES)
    summary = await _report(page, request)
    if isinstance(summary, Response):
        return summary
    t = page.t
    return render(
        page, request, "reports.html", report=summary,
        per_day=stacked_days(summary["days"], summary["events_per_day"],
                             {f: t(f"family.{f}") if i18n.has(f"family.{f}") else f
                              for f in summary["events_per_day"]}),
        hosts_chart=bars([(r["host"], r["events"]) for r in summary["top_hosts"]]),
        rules_chart=bars([(r["rule"], r["events"]) for r in summary["top_rules"]]),
        csv_url=f"/console/reports.csv?{request.url.query}",
    )


@router.get("/console/reports.csv")
async def report_csv(request: Request) -> Response:
    from collector.console.reports import to_csv

    page = await open_page(request, ALL_ROLES)
    summary = await _report(page, request)
    if isinstance(summary, Response):
        return summary
    name = f"courtguard-report-{summary['period']}-{summary['label']}.csv"
    return Response(to_csv(summary), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"', **SECURITY_HEADERS})
