"""Host isolation over HTTP: agents fetch their newest signed order; admins isolate and lift.

Agent: ``GET /api/v1/isolation`` answers the agent's newest order, exactly the
signed bytes, the signature in ``X-Courtguard-Signature`` and its algorithm in
``X-Courtguard-Signature-Algorithm`` (a claim: the agent verifies with what it
pinned); 404 ``no_order`` when it has none.

Admin (API key or console session with its CSRF token; ``collector.console.auth``):
``GET /api/v1/isolations`` (``open=true``: pending and active only),
``GET`` / ``POST /api/v1/agents/{agent_id}/isolations`` (``{"minutes", "reason"}``),
``POST /api/v1/isolations/{id}/approve`` and ``.../lift`` (``{"reason"}``).
What each does is ``collector.isolation.orders``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from agent.events import utcnow
from agent.signing import Signer
from collector.api.auth import require_agent
from collector.api.bounds import StoreId, check_json_text
from collector.api.context import context
from collector.api.responses import json_response
from collector.console.auth import ADMIN, Principal, check_csrf, require
from collector.errors import ApiError, ConfigError
from collector.isolation import orders
from collector.isolation.hints import IsolationHints
from collector.policy.signing import load_signing_key, signature_algorithm

router = APIRouter()
#: An isolation request is a number and a reason; nothing legitimate is larger.
MAX_REQUEST_BYTES = 8 * 1024


def signer_for(request: Request) -> Callable[[], Signer]:
    data_dir = context(request).settings.data_dir

    def load() -> Signer:
        try:
            return load_signing_key(data_dir)
        except ConfigError as exc:
            raise orders.IsolationRefused(
                503, "no_signing_key",
                f"收集端无法签发隔离指令：没有可用的签名密钥（{exc}）") from None

    return load


def reach_for(request: Request) -> orders.Reach:
    policies = request.app.state.current_policy.get()
    return orders.Reach.from_policy(
        policies.section("networks") if policies is not None else None)


def hints(request: Request) -> IsolationHints:
    found: IsolationHints = request.app.state.isolation_hints
    return found


async def carry_out(request: Request, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one store change off the loop; a refusal becomes its API error."""
    try:
        result = await run_in_threadpool(action)
    except orders.IsolationRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    hints(request).invalidate()
    return result


async def _admin(request: Request) -> Principal:
    who = await require(request, ADMIN)
    if request.method == "POST":
        check_csrf(who, request.headers.get("x-csrf-token"))
    return who


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_REQUEST_BYTES:
        raise ApiError(413, "body_too_large", f"the body is larger than {MAX_REQUEST_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        import json

        body = json.loads(raw)
        check_json_text(body)
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"the body is not valid JSON text ({exc})") from None
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_request", "the body must be a JSON object")
    return body


@router.get("/api/v1/isolation")
async def agent_order(request: Request) -> Response:
    ctx = context(request)
    agent = await require_agent(request, ctx.identities)
    found = await run_in_threadpool(orders.newest_order, ctx.db, agent.id)
    if found is None:
        raise ApiError(404, "no_order", "no isolation order has been issued for this agent")
    body, signature = found
    headers = {"Cache-Control": "no-store", "X-Courtguard-Signature": signature}
    if ctx.policy_key is not None:
        headers["X-Courtguard-Signature-Algorithm"] = signature_algorithm(ctx.policy_key)
    return Response(body, media_type="application/json", headers=headers)


@router.get("/api/v1/isolations")
async def list_all(request: Request, open: bool = False) -> Response:
    await _admin(request)
    found = await run_in_threadpool(orders.list_isolations, context(request).db, utcnow(),
                                    None, open)
    return json_response({"isolations": found})


@router.get("/api/v1/agents/{agent_id}/isolations")
async def list_for_agent(request: Request, agent_id: str) -> Response:
    await _admin(request)
    found = await run_in_threadpool(orders.list_isolations, context(request).db, utcnow(),
                                    agent_id[:64], False, orders.HISTORY)
    return json_response({"isolations": found})


@router.post("/api/v1/agents/{agent_id}/isolations")
async def isolate(request: Request, agent_id: str) -> Response:
    who = await _admin(request)
    body = await _body(request)
    ctx = context(request)
    made = await carry_out(request, lambda: orders.request(
        ctx.db, signer_for(request), agent_id[:64], body.get("minutes"), body.get("reason"),
        who.actor(request), utcnow(), requires_approval=ctx.settings.isolation_requires_approval,
        reach=reach_for(request)))
    return json_response(made, 201)


@router.post("/api/v1/isolations/{isolation_id}/approve")
async def approve(request: Request, isolation_id: StoreId) -> Response:
    who = await _admin(request)
    ctx = context(request)
    done = await carry_out(request, lambda: orders.approve(
        ctx.db, signer_for(request), isolation_id, who.actor(request), utcnow(),
        reach_for(request)))
    return json_response(done)


@router.post("/api/v1/isolations/{isolation_id}/lift")
async def lift(request: Request, isolation_id: StoreId) -> Response:
    who = await _admin(request)
    body = await _body(request)
    ctx = context(request)
    done = await carry_out(request, lambda: orders.lift(
        ctx.db, signer_for(request), isolation_id, who.actor(request), utcnow(),
        body.get("reason", "")))
    return json_response(done)
