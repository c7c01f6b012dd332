"""What every console page shares: sign-in and role checks, forms, rendering, listings.

A page handler (``collector.console.pages``) opens its ``Page`` (``open_page``
for a GET, ``submit`` for a form POST with its CSRF token) and answers with
``render``. Each page calls the same ``collector.console.data`` function as its
JSON twin in ``collector.api.queries``. Templates autoescape everything;
evidence is shown as text, never as markup. Responses carry a
Content-Security-Policy that allows only the collector's own script and style
files, as a second line of defence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse

from agent.calendar_cn import SHANGHAI
from agent.events import Severity
from agent.registry import EVIDENCE_MODELS
from collector.alerts import service
from collector.api.bounds import check_text
from collector.api.context import context
from collector.console import i18n, users
from collector.console.auth import ADMIN, ALL_ROLES, AUDIT, DOCUMENT_CHECK, Principal, principal
from collector.errors import ApiError
from collector.store.audit import Actor

HERE: Final = Path(__file__).resolve().parent
LANG_COOKIE: Final = "cg_lang"
LOGIN_COOKIE: Final = "cg_login"
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
STATIC_TYPES: Final = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                       ".svg": "image/svg+xml"}
NAV: Final = (
    ("overview", "Overview", ALL_ROLES),
    ("alerts", "Alerts", ALL_ROLES), ("events", "Events", ALL_ROLES),
    ("agents", "Agents", ALL_ROLES), ("reports", "Reports", ALL_ROLES),
    ("policies", "Policies", AUDIT), ("audit", "Audit trail", AUDIT),
    ("users", "Users", ADMIN),
    ("doccheck", "Document check", DOCUMENT_CHECK), ("docdecisions", "Clerk decisions", ALL_ROLES),
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
#: A value as one path segment of a console address (``/`` and ``?`` escaped too).
_env.filters["segment"] = lambda value: quote(str(value), safe="")
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
    return HTMLResponse(render_fragment(page, request, template, **values), status_code=code,
                        headers=SECURITY_HEADERS)


def render_fragment(page: Page | None, request: Request, template: str, **values: Any) -> str:
    """``template`` rendered with what every page gets (words, who, CSRF token, labels)."""
    lang = page.lang if page else language(request)
    t = i18n.translator(lang)
    who = page.who if page else None
    nav = [(slug, t(label)) for slug, label, roles in NAV if who and who.role in roles]
    calendar = request.app.state.calendar_monitor.notice() if who else None
    return _env.get_template(template).render(
        t=t, lang=lang, who=who, nav=nav, path=request.url.path, calendar_notice=calendar,
        csrf=who.session.csrf_token if who and who.session else "",
        query=request.url.query, severity_label=lambda s: t(f"severity.{s}"),
        status_label=lambda s: t(f"status.{s}"), **values,
    )


def safe_next(target: str | None) -> str:
    """Only paths inside the console: never another site (open redirect)."""
    if target and target.startswith("/console/") and not target.startswith("//") \
            and "\\" not in target and "\n" not in target and "\r" not in target:
        return target
    return "/console/overview"


def secure_cookies(request: Request) -> bool:
    """Whether the console's cookies get the Secure flag (HTTPS, or TLS the collector serves)."""
    return request.url.scheme == "https" or context(request).settings.tls


def filter_values(request: Request, names: tuple[str, ...]) -> dict[str, Any]:
    """A listing's filter fields as the form shows them again (repeated ones comma-joined)."""
    q = request.query_params
    return {name: q.get(name, "") for name in names} | {
        "kind": ",".join(q.getlist("kind")), "severity": ",".join(q.getlist("severity")),
        "status": ",".join(q.getlist("status"))}


def next_url(request: Request, cursor: str | None) -> str | None:
    """This listing's address with the next page's cursor; None on the last page."""
    if cursor is None:
        return None
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    return f"{request.url.path}?{urlencode([*pairs, ('cursor', cursor)])}"


async def saved_filters(page: Page, scope: str) -> list[dict[str, Any]]:
    """The signed-in user's saved filters of ``scope`` (events or alerts)."""
    from collector.console.saved import list_filters

    if page.who.session is None:  # a page fetched with an API key has no saved filters
        return []
    return await run_in_threadpool(list_filters, page.db, page.user_id, scope)
