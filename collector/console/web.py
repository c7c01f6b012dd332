"""The console's routes, assembled from its pages, and the answers a page gives when refused.

``install`` adds them to the app: a request without a live session is sent to
the sign-in form, one whose role may not open the page gets a 403 page, and a
malformed address (an id beyond any stored one) gets a 422 page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import RedirectResponse, Response

from collector.api.responses import invalid_request
from collector.console import i18n
from collector.console.page import SECURITY_HEADERS, LoginRequired, PageForbidden, language, render
from collector.console.pages import (
    agents,
    alerts,
    audit,
    auth,
    doccheck,
    entities,
    events,
    filters,
    overview,
    policies,
    reports,
    static,
    users,
)

router = APIRouter()
# The pages' routes themselves, not ``include_router``: this FastAPI keeps an included
# router as one nested entry, and whoever walks ``router.routes`` (the body-limit test
# listing every POST form) expects the console's routes. No two pages share a path, so
# the order only fixes the order of the route table.
for _page in (static, auth, overview, events, alerts, filters, audit, agents, policies, reports,
              users, entities, doccheck):
    router.routes.extend(_page.router.routes)


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
