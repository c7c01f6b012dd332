"""Entity pages: one host (agent), one account, one document hash, each on one page."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from agent.calendar_cn import SHANGHAI
from agent.detectors.accounts.policy import AccountsPolicy
from agent.events import utcnow
from collector.console import entities
from collector.console import params as p
from collector.console.auth import ALL_ROLES
from collector.console.page import Page, open_page, render

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
    return render(page, request, "host.html", **detail, filters=_filter_values(request),
                  pillar_choices=entities.PILLAR_CHOICES)


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
