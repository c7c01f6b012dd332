"""Entity pages: one host (agent), one account, one document hash, each on one page."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from agent.calendar_cn import SHANGHAI
from agent.detectors.accounts.policy import AccountsPolicy
from agent.events import utcnow
from collector.api import isolation as isolation_api
from collector.api.context import context
from collector.console import entities
from collector.console import params as p
from collector.console.auth import ADMIN, ALL_ROLES
from collector.console.page import Page, open_page, render, submit
from collector.isolation import orders

router = APIRouter()

FILTER_FIELDS: Final = ("pillar", "since", "until")


def _filter(page: Page, request: Request) -> tuple[entities.EntityFilter | None, str | None]:
    try:
        return entities.EntityFilter(request.query_params, SHANGHAI), None
    except p.FilterError as exc:
        return None, str(exc)


def _filter_values(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "") for name in FILTER_FIELDS}


def _not_found(page: Page, request: Request, message: str) -> Response:
    return render(page, request, "error.html", 404, message=page.t(message))


def _accounts_policy(request: Request) -> Any:
    policies = request.app.state.current_policy.get()
    document = policies.section("accounts") if policies is not None else None
    return document if isinstance(document, AccountsPolicy) else None


@router.get("/console/hosts/{agent_id}")
async def host_page(request: Request, agent_id: str) -> Response:
    page = await open_page(request, ALL_ROLES)
    where, error = _filter(page, request)
    if where is None:
        return render(page, request, "error.html", 422, message=error)
    detail = await run_in_threadpool(entities.host_detail, page.db, agent_id,
                                     request.app.state.monitor, where, utcnow())
    if detail is None:
        return _not_found(page, request, "No such host.")
    isolations = await run_in_threadpool(orders.list_isolations, page.db, utcnow(),
                                         detail["agent"]["id"], False, orders.HISTORY)
    return render(page, request, "host.html", **detail, filters=_filter_values(request),
                  pillar_choices=entities.PILLAR_CHOICES, isolations=isolations,
                  isolation_open=next((i for i in isolations
                                       if i["state"] in ("pending", "active")), None),
                  can_isolate=page.who.role in ADMIN,
                  approval_required=context(request).settings.isolation_requires_approval)


@router.post("/console/hosts/{agent_id}/isolation")
async def host_isolation(request: Request, agent_id: str) -> Response:
    """``op``: isolate (``minutes``, ``reason``), approve or lift (``isolation_id``)."""
    page, form = await submit(request, ADMIN)
    op = str(form.get("op") or "")
    settings = context(request).settings
    signer = isolation_api.signer_for(request)
    reach = isolation_api.reach_for(request)
    actor, now = page.actor, utcnow()

    def carry_out() -> None:
        if op == "isolate":
            orders.request(page.db, signer, agent_id[:64], form.get("minutes"),
                           form.get("reason"), actor, now,
                           requires_approval=settings.isolation_requires_approval, reach=reach)
        elif op == "approve":
            orders.approve(page.db, signer, _isolation_id(form.get("isolation_id")), actor, now,
                           reach)
        elif op == "lift":
            orders.lift(page.db, signer, _isolation_id(form.get("isolation_id")), actor, now,
                        form.get("reason") or "")
        else:
            raise orders.IsolationRefused(422, "invalid_request", f"未知的操作 {op[:20]!r}")

    try:
        await run_in_threadpool(carry_out)
    except orders.IsolationRefused as exc:
        return render(page, request, "error.html", exc.status, message=exc.message)
    isolation_api.hints(request).invalidate()
    return RedirectResponse(f"/console/hosts/{quote(agent_id[:64])}#host-isolation", 303)


def _isolation_id(value: object) -> int:
    text = str(value or "")
    if not text.isdigit() or int(text) > 2**63 - 1:
        raise orders.IsolationRefused(422, "invalid_request", "隔离编号无效")
    return int(text)


@router.get("/console/accounts/{name:path}")
async def account_page(request: Request, name: str) -> Response:
    page = await open_page(request, ALL_ROLES)
    account = entities.check_account(name)
    if account is None:
        return _not_found(page, request, "No such account.")
    where, error = _filter(page, request)
    if where is None:
        return render(page, request, "error.html", 422, message=error)
    detail = await run_in_threadpool(entities.account_detail, page.db, account,
                                     _accounts_policy(request), where)
    return render(page, request, "account.html", **detail, filters=_filter_values(request),
                  pillar_choices=entities.PILLAR_CHOICES)


@router.get("/console/documents/{sha256}")
async def document_page(request: Request, sha256: str) -> Response:
    page = await open_page(request, ALL_ROLES)
    detail = await run_in_threadpool(entities.document_detail, page.db, sha256)
    if detail is None:
        return _not_found(page, request, "No such document.")
    return render(page, request, "document.html", **detail)
