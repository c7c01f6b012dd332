"""The console's pages: server-rendered Jinja2, every value escaped, every route role-checked.

Each page calls the same ``collector.console.data`` function as its JSON twin
in ``collector.console.api``. Templates autoescape everything; evidence is
shown as text, never as markup. Responses carry a Content-Security-Policy
that allows only the collector's own script and style files, as a second
line of defence.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from agent.calendar_cn import SHANGHAI
from agent.events import Severity, utcnow
from agent.registry import EVIDENCE_MODELS
from collector import credentials
from collector.alerts import service
from collector.api.bounds import StoreId, check_text
from collector.api.context import context
from collector.api.responses import invalid_request
from collector.console import data, i18n, users
from collector.console import params as p
from collector.console.auth import (
    ADMIN,
    ALL_ROLES,
    AUDIT,
    SESSION_COOKIE,
    TRIAGE,
    Principal,
    client_address,
    principal,
)
from collector.console.sessions import create_session, end_session
from collector.errors import ApiError
from collector.store.audit import Actor

router = APIRouter()
HERE: Final = Path(__file__).resolve().parent
LANG_COOKIE: Final = "cg_lang"
LOGIN_COOKIE: Final = "cg_login"
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
STATIC_TYPES: Final = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                       ".svg": "image/svg+xml"}
NAV: Final = (
    ("alerts", "Alerts", ALL_ROLES), ("events", "Events", ALL_ROLES),
    ("agents", "Agents", ALL_ROLES), ("reports", "Reports", ALL_ROLES),
    ("policies", "Policies", AUDIT), ("audit", "Audit trail", AUDIT),
    ("users", "Users", ADMIN),
)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def local(value: str | datetime | None, with_seconds: bool = True) -> str:
    """A stored UTC time as Asia/Shanghai wall time."""
    if value is None or value == "":
        return "-"
    when: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S" if with_seconds
                                              else "%Y-%m-%d %H:%M")


_env.filters["local"] = local
_env.globals["SEVERITIES"] = [s.value for s in Severity]
_env.globals["STATUSES"] = service.STATUSES
_env.globals["RESOLUTIONS"] = service.RESOLUTIONS
_env.globals["KINDS"] = sorted(EVIDENCE_MODELS)
_env.globals["ROLES"] = users.ROLES


class LoginRequired(Exception):
    """No (live) session: the page answers with a redirect to the sign-in form."""


class PageForbidden(Exception):
    """Signed in, but the role may not open this page."""


@dataclass
class Page:
    request: Request
    who: Principal
    lang: str

    @property
    def t(self) -> Callable[[str], str]:
        return i18n.translator(self.lang)

    @property
    def actor(self) -> Actor:
        return self.who.actor(self.request)

    @property
    def user_id(self) -> str:
        """The signed-in user's id; only console sessions (not API keys) have one."""
        if self.who.session is None:
            raise PageForbidden
        return self.who.session.user.id

    @property
    def db(self) -> Any:
        return context(self.request).db


def language(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    return chosen if chosen in i18n.LANGUAGES else context(request).settings.console_language


async def open_page(request: Request, roles: frozenset[str]) -> Page:
    who = await principal(request)
    if who is None:
        raise LoginRequired
    if who.role not in roles:
        raise PageForbidden
    return Page(request, who, language(request))


async def read_form(request: Request) -> FormData:
    """The POSTed form; 422 if a field holds a NUL character, which no store column takes."""
    form = await request.form()
    for value in form.values():
        if isinstance(value, str):
            try:
                check_text(value)
            except ValueError as exc:
                raise ApiError(422, "invalid_request", f"a form field {exc}") from None
    return form


async def submit(request: Request, roles: frozenset[str]) -> tuple[Page, FormData]:
    """A form POST: signed in, allowed, and carrying this session's CSRF token."""
    page = await open_page(request, roles)
    form = await read_form(request)
    token = form.get("csrf")
    if page.who.session is None or not page.who.session.csrf_ok(
            token if isinstance(token, str) else None):
        raise ApiError(403, "csrf_failed", "the form is stale or did not come from the console")
    return page, form


def render(page: Page | None, request: Request, template: str, code: int = 200,
           **values: Any) -> HTMLResponse:
    lang = page.lang if page else language(request)
    t = i18n.translator(lang)
    who = page.who if page else None
    nav = [(slug, t(label)) for slug, label, roles in NAV if who and who.role in roles]
    calendar = request.app.state.calendar_monitor.notice() if who else None
    body = _env.get_template(template).render(
        t=t, lang=lang, who=who, nav=nav, path=request.url.path, calendar_notice=calendar,
        csrf=who.session.csrf_token if who and who.session else "",
        query=request.url.query, severity_label=lambda s: t(f"severity.{s}"),
        status_label=lambda s: t(f"status.{s}"), **values,
    )
    return HTMLResponse(body, status_code=code, headers=SECURITY_HEADERS)


def install(app: Any) -> None:
    """The console's exception handlers and routes on ``app``."""

    async def _login(request: Request, _exc: Exception) -> Response:
        if request.method != "GET":
            return render(None, request, "error.html", 401, message=i18n.translator(
                language(request))("Please sign in."))
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/console/login?{urlencode({'next': target})}", 303,
                                headers=SECURITY_HEADERS)

    async def _forbidden(request: Request, _exc: Exception) -> Response:
        t = i18n.translator(language(request))
        return render(None, request, "error.html", 403,
                      message=t("Your role may not open this page."))

    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if not request.url.path.startswith("/console/"):
            return await invalid_request(request, exc)
        names = sorted({str(e["loc"][-1]) for e in exc.errors() if e.get("loc")})
        t = i18n.translator(language(request))
        return render(None, request, "error.html", 422, message=t(
            "The address holds an invalid value: {names}.").format(names=", ".join(names)))

    app.add_exception_handler(LoginRequired, _login)
    app.add_exception_handler(PageForbidden, _forbidden)
    # The pages answer a malformed address (an id beyond any stored one) with a page.
    app.exception_handler(RequestValidationError)(_invalid)
    app.include_router(router)


def _safe_next(target: str | None) -> str:
    """Only paths inside the console: never another site (open redirect)."""
    if target and target.startswith("/console/") and not target.startswith("//") \
            and "\\" not in target and "\n" not in target and "\r" not in target:
        return target
    return "/console/alerts"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or context(request).settings.tls


# -- static files, language, sign-in ---------------------------------------------------------


@router.get("/console/static/{name}")
async def static(name: str) -> Response:
    path = HERE / "static" / name
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or "/" in name or not path.is_file():
        return Response("not found", 404, media_type="text/plain")
    return Response(path.read_bytes(), media_type=kind,
                    headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})


@router.get("/console")
@router.get("/console/")
async def home() -> Response:
    return RedirectResponse("/console/alerts", 303)


@router.get("/console/lang/{lang}")
async def choose_language(request: Request, lang: str) -> Response:
    response = RedirectResponse(_safe_next(request.query_params.get("next")), 303)
    if lang in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True,
                            samesite="lax", secure=_secure(request))
    return response


@router.get("/console/login")
async def login_form(request: Request) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(None, request, "login.html", login_csrf=token, error=None,
                      next=_safe_next(request.query_params.get("next")))
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=_secure(request), path="/console/login")
    return response


@router.post("/console/login")
async def login(request: Request) -> Response:
    ctx = context(request)
    t = i18n.translator(language(request))
    form = await request.form()
    username, password = str(form.get("username") or ""), str(form.get("password") or "")
    if "\x00" in username:  # no user has one, and PostgreSQL cannot even look it up
        username = ""
    target = _safe_next(str(form.get("next") or ""))
    cookie, sent = request.cookies.get(LOGIN_COOKIE), str(form.get("csrf") or "")

    def again(error: str, status: int) -> Response:
        token = secrets.token_urlsafe(24)
        response = render(None, request, "login.html", status, login_csrf=token, error=error,
                          next=target)
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True,
                            samesite="strict", secure=_secure(request), path="/console/login")
        return response

    if not cookie or not credentials.same(cookie, sent):
        return again(t("The sign-in form expired; please try again."), 403)
    throttle = request.app.state.login_throttle
    if not throttle.allow(client_address(request)):
        return again(t("Too many sign-in attempts from this address; wait a minute."), 429)
    now = utcnow()
    result = await run_in_threadpool(
        users.authenticate, ctx.db, username[:200], password[:1024], now,
        client_address(request), lockout_failures=ctx.settings.console_lockout_failures,
        lockout=timedelta(seconds=ctx.settings.console_lockout_s),
    )
    if result.user is None:
        if result.refusal == "locked":
            return again(t("This account is locked after repeated failures until {until}.")
                         .format(until=local(result.locked_until)), 403)
        return again(t("Wrong user name or password, or the account is disabled."), 401)
    token = await run_in_threadpool(create_session, ctx.db, result.user, now,
                                    client_address(request))
    response = RedirectResponse(target, 303, headers=SECURITY_HEADERS)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=_secure(request), path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")
    return response


@router.post("/console/logout")
async def logout(request: Request) -> Response:
    await submit(request, ALL_ROLES)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await run_in_threadpool(end_session, context(request).db, token)
    response = RedirectResponse("/console/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- events ------------------------------------------------------------------------------------


def _filter_values(request: Request, names: tuple[str, ...]) -> dict[str, Any]:
    q = request.query_params
    return {name: q.get(name, "") for name in names} | {
        "kind": ",".join(q.getlist("kind")), "severity": ",".join(q.getlist("severity")),
        "status": ",".join(q.getlist("status"))}


EVENT_FIELDS: Final = ("since", "until", "min_severity", "host", "account", "rule_id", "q",
                       "agent_id")
ALERT_FIELDS: Final = ("since", "until", "min_severity", "host", "account", "rule_id", "q",
                       "assignee")


def _next_url(request: Request, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    return f"{request.url.path}?{urlencode([*pairs, ('cursor', cursor)])}"


async def _saved(page: Page, scope: str) -> list[dict[str, Any]]:
    from collector.console.saved import list_filters

    if page.who.session is None:  # a page fetched with an API key has no saved filters
        return []
    return await run_in_threadpool(list_filters, page.db, page.user_id, scope)


@router.get("/console/events")
async def events_page(request: Request) -> Response:
    page = await open_page(request, ALL_ROLES)
    try:
        listing = await run_in_threadpool(data.events_listing, page.db, request.query_params,
                                          SHANGHAI)
        error = None
    except p.FilterError as exc:
        listing, error = {"events": [], "next_cursor": None, "counts": {}}, str(exc)
    return render(page, request, "events.html", listing=listing, error=error,
                  filters=_filter_values(request, EVENT_FIELDS),
                  next_url=_next_url(request, listing["next_cursor"]),
                  saved=await _saved(page, "events"))


@router.get("/console/events/{event_id}")
async def event_page(request: Request, event_id: str) -> Response:
    page = await open_page(request, ALL_ROLES)
    detail = await run_in_threadpool(data.event_detail, page.db, event_id)
    if detail is None:
        return render(page, request, "error.html", 404, message=page.t("No such event."))
    return render(page, request, "event.html", **detail, evidence=evidence_rows(
        detail["event"]["evidence"], page.t))


def evidence_rows(evidence: Any, t: Callable[[str], str], prefix: str = "",
                  depth: int = 0) -> list[tuple[str, str, int]]:
    """Evidence flattened to (label, text, depth) rows; values are text, never markup."""
    rows: list[tuple[str, str, int]] = []
    if isinstance(evidence, Mapping):
        for key, value in evidence.items():
            label = t(f"field.{key}") if i18n.has(f"field.{key}") else str(key)
            if isinstance(value, Mapping | list) and value:
                rows.append((label, "", depth))
                rows.extend(evidence_rows(value, t, f"{prefix}{key}.", depth + 1))
            else:
                rows.append((label, _text(value), depth))
    elif isinstance(evidence, list):
        for index, value in enumerate(evidence, start=1):
            if isinstance(value, Mapping | list):
                rows.append((f"#{index}", "", depth))
                rows.extend(evidence_rows(value, t, prefix, depth + 1))
            else:
                rows.append((f"#{index}", _text(value), depth))
    return rows


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, Mapping | list):
        return "-"
    return str(value)


# -- alerts ------------------------------------------------------------------------------------


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
    filters = _filter_values(request, ALERT_FIELDS)
    filters["status"] = ",".join(params.getlist("status"))
    return render(page, request, "alerts.html", listing=listing, error=error, filters=filters,
                  next_url=_next_url(request, listing["next_cursor"]),
                  can_triage=page.who.role in TRIAGE, saved=await _saved(page, "alerts"),
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

    back = _safe_next(field("back"))
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


# -- saved filters -----------------------------------------------------------------------------


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


# -- audit, agents, policies, reports ----------------------------------------------------------


@router.get("/console/audit")
async def audit_page(request: Request) -> Response:
    page = await open_page(request, AUDIT)
    try:
        listing = await run_in_threadpool(data.audit_listing, page.db, request.query_params,
                                          SHANGHAI)
        error = None
    except p.FilterError as exc:
        listing, error = {"entries": [], "next_cursor": None}, str(exc)
    q = request.query_params
    return render(page, request, "audit.html", listing=listing, error=error,
                  filters={k: q.get(k, "") for k in ("actor", "action", "object_type",
                                                      "object_id", "since", "until")},
                  next_url=_next_url(request, listing["next_cursor"]))


@router.get("/console/agents")
async def agents_page(request: Request) -> Response:
    page = await open_page(request, ALL_ROLES)
    listing = await run_in_threadpool(
        data.agents_listing, page.db, request.app.state.monitor,
        request.app.state.work_calendar(), utcnow())
    return render(page, request, "agents.html", **listing)


@router.get("/console/policies")
async def policies_page(request: Request) -> Response:
    from collector.policy.status import policy_status

    page = await open_page(request, AUDIT)
    status = await run_in_threadpool(policy_status, page.db,
                                     request.app.state.courtguard.policy_key)
    return render(page, request, "policies.html", status=status)


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


# -- users (admin) -----------------------------------------------------------------------------


@router.get("/console/users")
async def users_page(request: Request) -> Response:
    page = await open_page(request, ADMIN)
    rows = await run_in_threadpool(users.list_users, page.db)
    return render(page, request, "users.html", users=rows, error=None,
                  message=request.query_params.get("done"))


@router.post("/console/users")
async def users_action(request: Request) -> Response:
    """``op`` = create | disable | enable | password, with ``username`` and its fields."""
    page, form = await submit(request, ADMIN)
    op = str(form.get("op") or "")
    username = str(form.get("username") or "")
    password = str(form.get("password") or "")
    now = utcnow()
    try:
        if op == "create":
            await run_in_threadpool(
                lambda: users.create_user(page.db, username, str(form.get("role") or ""),
                                          password, now,
                                          display_name=str(form.get("display_name") or ""),
                                          actor=page.actor))
        elif op in ("disable", "enable"):
            if op == "disable" and username == page.who.name:
                raise users.UserError("you cannot disable yourself")
            await run_in_threadpool(users.set_disabled, page.db, username, op == "disable", now,
                                    page.actor)
        elif op == "password":
            await run_in_threadpool(users.set_password, page.db, username, password, now,
                                    page.actor)
        else:
            raise users.UserError(f"unknown operation {op!r}")
    except users.UserError as exc:
        rows = await run_in_threadpool(users.list_users, page.db)
        return render(page, request, "users.html", 422, users=rows, error=str(exc), message=None)
    return RedirectResponse(f"/console/users?{urlencode({'done': op})}", 303)
