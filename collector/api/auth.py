"""Who a request comes from: an enrolled agent (``agent_id:secret``) or an API key."""

from __future__ import annotations

import uuid

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from collector import credentials
from collector.api.context import context
from collector.errors import ApiError
from collector.policy.serving import IdentityCache
from collector.store.agents import AgentIdentity, authenticate
from collector.store.apikeys import ApiKeyInfo, authenticate_api_key

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _missing(what: str) -> ApiError:
    return ApiError(
        401, "missing_credentials", f"send `Authorization: Bearer {what}`", headers=_CHALLENGE
    )


def _invalid(what: str) -> ApiError:
    return ApiError(401, "invalid_credentials", f"the {what} is not valid", headers=_CHALLENGE)


async def require_agent(request: Request, cache: IdentityCache | None = None) -> AgentIdentity:
    """The enrolled, unrevoked agent the request's credentials name; 401 otherwise.

    With ``cache`` a recent successful check is reused (the policy poll's cheap path).
    """
    credential = credentials.bearer(request.headers.get("authorization"))
    if credential is None:
        raise _missing("<agent_id>:<secret>")
    agent_part, sep, secret = credential.partition(":")
    try:
        agent_id = str(uuid.UUID(agent_part))
    except ValueError:
        raise _invalid("agent credential") from None
    if not sep or not secret:
        raise _invalid("agent credential")
    db = context(request).db

    async def lookup(agent_id: str, secret: str) -> AgentIdentity | None:
        return await run_in_threadpool(authenticate, db, agent_id, secret)

    if cache is not None:
        agent = await cache.authenticate(agent_id, secret, lookup)
    else:
        agent = await lookup(agent_id, secret)
    if agent is None:
        raise _invalid("agent credential")
    if agent.superseded_by is not None:
        raise ApiError(
            401, "agent_superseded",
            f"this host enrolled again as agent {agent.superseded_by}, which took this "
            "identity's place; an agent writes only as itself, so stop this copy of the agent "
            "(its data directory is stale)",
            headers=_CHALLENGE,
        )
    if agent.revoked:
        raise ApiError(
            401, "agent_revoked",
            "this agent was revoked by an operator and must be re-enrolled with a new token",
            headers=_CHALLENGE,
        )
    return agent


async def require_role(request: Request, role: str) -> ApiKeyInfo:
    """The request's API key if it has ``role``; 401 without a valid key, 403 without the role."""
    return await require_one_of(request, (role,))


async def require_one_of(request: Request, roles: tuple[str, ...]) -> ApiKeyInfo:
    """The request's API key if its role is one of ``roles``; 401 / 403 otherwise."""
    credential = credentials.bearer(request.headers.get("authorization"))
    if credential is None:
        raise _missing("<api key>")
    key = await run_in_threadpool(authenticate_api_key, context(request).db, credential)
    if key is None:
        raise _invalid("API key")
    if key.role not in roles:
        raise ApiError(403, "forbidden",
                       f"this API key's role is {key.role}; {' or '.join(roles)} is needed")
    return key


async def require_admin(request: Request) -> ApiKeyInfo:
    return await require_role(request, "admin")
