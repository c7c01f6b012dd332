"""Console users (admin): list, create, disable, enable, set a password."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from agent.events import utcnow
from collector.console import users
from collector.console.auth import ADMIN
from collector.console.page import open_page, render, submit

router = APIRouter()


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
