"""Policy over HTTP: agents fetch their group's signed bundle; admins see versions and rollout."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from collector.api.auth import require_admin, require_agent
from collector.api.context import context
from collector.api.responses import json_response
from collector.errors import ApiError
from collector.policy.signing import signature_algorithm
from collector.policy.status import policy_status

agent_router = APIRouter()
admin_router = APIRouter(dependencies=[Depends(require_admin)])


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return etag in tags or "*" in tags


@agent_router.get("/api/v1/policy")
async def agent_policy(request: Request) -> Response:
    """The newest bundle for the agent's group: 304 when If-None-Match names it already.

    The body is exactly the signed bytes of the agent bundle (collector-only kinds left
    out); the signature travels in ``X-Courtguard-Signature`` and its algorithm in
    ``X-Courtguard-Signature-Algorithm`` (a claim: the agent verifies with the
    algorithm and key it pinned, before it parses anything).
    """
    ctx = context(request)
    agent = await require_agent(request, ctx.identities)
    stored = await ctx.policies.for_group(agent.group)
    if stored is None:
        raise ApiError(
            404,
            "no_policy",
            f"no policy has been published for group {agent.group!r}; the agent "
            "keeps its local policy",
        )
    bundle = stored.for_agents()
    headers = {
        "ETag": bundle.etag,
        "Cache-Control": "no-cache",
        "X-Courtguard-Policy-Version": str(bundle.version),
        "X-Courtguard-Group": agent.group,
    }
    if _matches(request.headers.get("if-none-match"), bundle.etag):
        ctx.metrics.policy_fetches.labels("304").inc()
        return Response(status_code=304, headers=headers)
    ctx.metrics.policy_fetches.labels("200").inc()
    headers["X-Courtguard-Signature"] = bundle.signature
    if ctx.policy_key is not None:
        headers["X-Courtguard-Signature-Algorithm"] = signature_algorithm(ctx.policy_key)
    return Response(bundle.body, media_type="application/json", headers=headers)


@admin_router.get("/api/v1/policies")
async def policies(request: Request) -> Response:
    """Every version (note, author, group, action) and how many agents run each."""
    ctx = context(request)
    status = await run_in_threadpool(policy_status, ctx.db, ctx.policy_key)
    return json_response(status)
