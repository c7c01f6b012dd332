"""Signing in and out, and choosing the console's language."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from agent.events import utcnow
from collector import credentials
from collector.api.context import context
from collector.console import i18n, users
from collector.console.auth import CLERK, CLERK_HOME, SESSION_COOKIE, SIGNED_IN, client_address
from collector.console.page import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    SECURITY_HEADERS,
    language,
    local,
    render,
    safe_next,
    secure_cookies,
    submit,
)
from collector.console.sessions import create_session, end_session

router = APIRouter()

DIRECTORY_UNAVAILABLE: Final = ("The directory service is unavailable; try again later or "
                                "contact an administrator.")
DIRECTORY_NO_ROLE: Final = ("Your directory account is in no group with a console role; ask an "
                            "administrator for access.")


@router.get("/console/lang/{lang}")
async def choose_language(request: Request, lang: str) -> Response:
    response = RedirectResponse(safe_next(request.query_params.get("next")), 303)
    if lang in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True,
                            samesite="lax", secure=secure_cookies(request))
    return response


@router.get("/console/login")
async def login_form(request: Request) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(None, request, "login.html", login_csrf=token, error=None,
                      next=safe_next(request.query_params.get("next")))
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=secure_cookies(request), path="/console/login")
    return response


@router.post("/console/login")
async def login(request: Request) -> Response:
    ctx = context(request)
    t = i18n.translator(language(request))
    form = await request.form()
    username, password = str(form.get("username") or ""), str(form.get("password") or "")
    if "\x00" in username:  # no user has one, and PostgreSQL cannot even look it up
        username = ""
    target = safe_next(str(form.get("next") or ""))
    cookie, sent = request.cookies.get(LOGIN_COOKIE), str(form.get("csrf") or "")

    def again(error: str, status: int) -> Response:
        token = secrets.token_urlsafe(24)
        response = render(None, request, "login.html", status, login_csrf=token, error=error,
                          next=target)
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                            secure=secure_cookies(request), path="/console/login")
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
        directory=request.app.state.directory,
    )
    if result.user is None:
        if result.refusal == "locked":
            return again(t("This account is locked after repeated failures until {until}.")
                         .format(until=local(result.locked_until)), 403)
        if result.refusal == "unavailable":
            return again(t(DIRECTORY_UNAVAILABLE), 503)
        if result.refusal == "no_role":
            return again(t(DIRECTORY_NO_ROLE), 403)
        return again(t("Wrong user name or password, or the account is disabled."), 401)
    token = await run_in_threadpool(create_session, ctx.db, result.user, now,
                                    client_address(request))
    if result.user.role in CLERK and not target.startswith(CLERK_HOME):
        target = CLERK_HOME  # a clerk may open no other page
    response = RedirectResponse(target, 303, headers=SECURITY_HEADERS)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=secure_cookies(request), path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")
    return response


@router.post("/console/logout")
async def logout(request: Request) -> Response:
    await submit(request, SIGNED_IN)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await run_in_threadpool(end_session, context(request).db, token)
    response = RedirectResponse("/console/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
