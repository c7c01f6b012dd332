"""The alerts page, one alert, and the triage form (single and bulk)."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from agent.calendar_cn import SHANGHAI
from collector.alerts import service
from collector.api.bounds import StoreId
from collector.api.context import context
from collector.console import data, i18n, notifications
from collector.console import params as p
from collector.console.auth import ALL_ROLES, TRIAGE
from collector.console.page import (
    SECURITY_HEADERS,
    filter_values,
    next_url,
    open_page,
    render,
    render_fragment,
    safe_next,
    saved_filters,
    submit,
)
from collector.console.pages.events import evidence_rows
from collector.console.sorting import sort_links

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
        listing, error = {"alerts": [], "next_cursor": None, "counts": {}, "sort": None,
                          "group": None, "groups": []}, str(exc)
    filters = filter_values(request, ALERT_FIELDS)
    filters["status"] = ",".join(params.getlist("status"))
    current = listing.get("sort") or service.DEFAULT_ALERT_ORDER
    return render(page, request, "alerts.html", listing=listing, error=error, filters=filters,
                  next_url=next_url(request, listing["next_cursor"]),
                  can_triage=page.who.role in TRIAGE, saved=await saved_filters(page, "alerts"),
                  message=request.query_params.get("done"),
                  sort_links=sort_links(request, current, SORT_KEYS),
                  group_links=_group_links(request, listing))


#: The list's columns, each sortable (``service.ALERT_ORDERS``).
SORT_KEYS: Final = ["id", "severity", "status", "title", "host", "account", "rule", "count",
                    "last_seen", "assignee"]
_GROUP_FILTER: Final = {"host": "host", "rule": "rule_id", "account": "account"}


def _group_links(request: Request, listing: dict[str, Any]) -> list[str]:
    """For each group, this list filtered to it (and no longer grouped)."""
    group = listing.get("group")
    if not group:
        return []
    name = _GROUP_FILTER[group]
    pairs = [(k, v) for k, v in request.query_params.multi_items()
             if k not in ("group", "cursor", name)]
    if "status" not in request.query_params and "all" not in request.query_params:
        pairs.append(("status", "new,acknowledged,in_progress"))
    return [f"/console/alerts?{urlencode([*pairs, (name, g['value'] or '')])}"
            for g in listing["groups"]]


@router.get("/console/alerts/{alert_id}")
async def alert_page(request: Request, alert_id: StoreId) -> Response:
    page = await open_page(request, ALL_ROLES)
    detail = await run_in_threadpool(data.alert_detail, page.db, alert_id)
    if detail is None:
        return render(page, request, "error.html", 404, message=page.t("No such alert."))
    rule = await run_in_threadpool(data.rule_text, context(request).settings.effective_policy_dir,
                                   detail["alert"]["rule_id"])
    notified = await run_in_threadpool(notifications.for_alert, page.db, alert_id)
    evidence = evidence_rows(detail["evidence"], page.t) if detail["evidence"] else []
    # documents rules carry their basis in the policy; the finding repeats the one it applied
    found = detail["evidence"].get("basis") if isinstance(detail["evidence"], dict) else None
    basis = (rule or {}).get("basis") or (found if isinstance(found, str) else None)
    return render(page, request, "alert.html", **detail, rule=rule, evidence_rows=evidence,
                  basis=basis, notifications=notified,
                  can_triage=page.who.role in TRIAGE, message=request.query_params.get("done"),
                  audit_value=lambda action, value: audit_value(page.t, detail["names"], action,
                                                               value))


def audit_value(t: Any, names: dict[str, str], action: str, value: str | None) -> str:
    """An audit entry's from/to value in words: statuses, resolutions, people's names."""
    if not value:
        return "-"
    if action == "alert.assign":
        return f"{names[value]} ({value})" if value in names else value
    status, _, resolution = value.partition(":")
    if i18n.has(f"status.{status}"):
        words = t(f"status.{status}")
        if resolution:
            resolved = (t(f"resolution.{resolution}") if i18n.has(f"resolution.{resolution}")
                        else resolution)
            words = f"{words}（{resolved}）"
        return str(words)
    return value


QUICK_ACTIONS: Final = ("acknowledge", "start", "close")


@router.post("/console/alerts/{alert_id}/{action}")
async def alert_quick_action(request: Request, alert_id: StoreId, action: str) -> Response:
    """One alert, one action, from its row in the list: the in-place triage's endpoint.

    The list's script sends ``X-Requested-With: fetch`` and gets JSON with the row
    rendered again; without the script the row's button posts the list's form here
    and the answer is the list again (or the refusal).
    """
    page, form = await submit(request, TRIAGE)
    fetched = request.headers.get("x-requested-with") == "fetch"
    back = safe_next(_field(form, "back"))
    if action not in QUICK_ACTIONS:
        return _answer(page, request, fetched, 404, page.t("No such action."), back)
    ctx = context(request)
    try:
        outcomes = await run_in_threadpool(
            service.transition, ctx.db, [alert_id], action, page.actor,
            resolution=_field(form, "resolution"), comment=_field(form, "comment"))
    except service.AlertError as exc:
        return _answer(page, request, fetched, 422, _refusal(page, exc.code, exc.detail), back,
                       alert_id)
    ctx.alert_feed.poke()
    outcome = outcomes[0]
    if not outcome.ok:
        return _answer(page, request, fetched, 409,
                       _refusal(page, outcome.error or "", outcome.detail or ""), back, alert_id)
    if not fetched:
        separator = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{separator}{urlencode({'done': 1})}", 303)
    message = page.t("Alert #{id}: {action} done.").format(id=alert_id, action=page.t(action))
    return _answer(page, request, fetched, 200, message, back, alert_id)


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _refusal(page: Any, code: str, detail: str) -> str:
    """A refused action in the console's language: the known codes are translated."""
    key = f"refusal.{code}"
    return page.t(key) if i18n.has(key) else detail


def _answer(page: Any, request: Request, fetched: bool, code: int, message: str, back: str,
            alert_id: int | None = None) -> Response:
    if not fetched:
        return render(page, request, "error.html", code, message=message, back=back)
    row = None
    if alert_id is not None:
        alert = service.get_alert(page.db, alert_id)
        if alert is not None:
            names = data.display_names(page.db, [alert["assignee"]])
            alert["assignee_name"] = names.get(alert["assignee"] or "")
            row = render_fragment(page, request, "_alert_row.html", a=alert,
                                  can_triage=page.who.role in TRIAGE)
    return JSONResponse({"ok": code == 200, "message": message, "row": row}, status_code=code,
                        headers=SECURITY_HEADERS)


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
