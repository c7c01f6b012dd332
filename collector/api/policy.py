"""Policy over HTTP: agents fetch their group's signed bundle; admins see versions and rollout.

An agent that already runs the newest bundle may ask the collector to hold its
conditional fetch (``If-None-Match`` with ``Prefer: wait=N``, RFC 7240), or
its fetch while nothing is published for its group: the answer is a 304 (or
the 404) after at most ``MAX_WAIT_S`` (``Preference-Applied`` says the wait
was honoured), or the new bundle as soon as the group's version moves,
seen within ``policy_refresh_s`` (``PolicyCache``: one counter read per
process however many agents wait). So a publish reaches a waiting agent in
seconds, not at its next poll. A stopping server ends every wait at once
(``PolicyWaits``).

Every held fetch is an open connection (a file descriptor and its buffers), and
its agent keeps a second one for its event batches (agent ``keepalive_expiry_s``
above its heartbeat interval), so at most ``policy_held_max`` are held, and never
more than half of the process's open-file limit less ``FD_RESERVE`` for the
database and the console (``CONNECTIONS_PER_AGENT``); a fetch beyond that is
answered at once without ``Preference-Applied``, and the agent polls on its
timer instead. The held fetches do not each look at the
cache: one watcher per process does, every ``policy_refresh_s``, and wakes
them all when the version counter moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
import time
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from collector.api.auth import require_admin, require_agent
from collector.api.context import context
from collector.api.responses import json_response
from collector.errors import ApiError
from collector.policy.signing import signature_algorithm
from collector.policy.status import policy_status
from collector.store.policies import StoredBundle

log = structlog.get_logger("collector.policy")

agent_router = APIRouter()
admin_router = APIRouter(dependencies=[Depends(require_admin)])

#: The longest a policy fetch is held: below common proxies' idle timeouts.
MAX_WAIT_S: Final = 55.0
#: How often held fetches look at the cache when ``policy_refresh_s`` is 0.
MIN_CHECK_S: Final = 0.5
#: Open files kept free of agents' connections: the database, the console, logs.
FD_RESERVE: Final = 1024
#: Connections an agent keeps open: its held policy fetch and its ingest connection.
CONNECTIONS_PER_AGENT: Final = 2
_WAIT: Final = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


@dataclass
class PolicyWaits:
    """Held policy fetches: how many, the watcher that wakes them, and ``close_all`` (the
    server's shutdown) that answers every one at once."""

    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    #: Fetches held now.
    waiting: int = 0
    #: Set (and replaced) each time the version counter moves: every held fetch looks again.
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: Held fetches beyond which a fetch is answered at once (None: not worked out yet).
    limit: int | None = None
    watcher: asyncio.Task[None] | None = None

    def close_all(self) -> None:
        self.stopping.set()
        self.changed.set()

    def allowed(self, configured: int) -> int:
        if self.limit is None:
            soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            by_files = (configured if soft == resource.RLIM_INFINITY
                        else (soft - FD_RESERVE) // CONNECTIONS_PER_AGENT)
            self.limit = max(0, min(configured, by_files))
        return self.limit

    def watch(self, policies: Any, every: float) -> None:
        """Start the one watcher of the version counter, unless it runs already."""
        if self.watcher is None or self.watcher.done():
            # The version the first held fetch's answer came from (read now, before any
            # await), so a publish seen by another request before the watcher's first
            # look still wakes it.
            self.watcher = asyncio.get_running_loop().create_task(
                self._watch(policies, every, policies.known_version), name="policy-waits")

    async def _watch(self, policies: Any, every: float, seen: int | None) -> None:
        while self.waiting > 0 and not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await self.stopping.wait()
            try:
                version = await policies.version()
            except Exception as exc:  # the store is away: the held fetches time out as 304s
                log.warning("policy version not read; held fetches keep waiting",
                            error=str(exc))
                continue
            if version != seen:
                seen = version
                self.changed.set()
                self.changed = asyncio.Event()


def policy_waits(app: Any) -> PolicyWaits:
    found = getattr(app.state, "policy_waits", None)
    if found is None:
        found = app.state.policy_waits = PolicyWaits()
    return found


def wait_preference(prefer: str | None) -> float:
    """Seconds asked for by ``Prefer: wait=N`` (0 when absent or malformed), at most MAX_WAIT_S."""
    match = _WAIT.search(prefer or "")
    return min(float(match.group(1)), MAX_WAIT_S) if match else 0.0


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
    wait_s = wait_preference(request.headers.get("prefer"))
    if_none_match = request.headers.get("if-none-match")
    if wait_s > 0 and (stored is None or _matches(if_none_match, stored.for_agents().etag)):
        waits = policy_waits(request.app)
        if waits.waiting < waits.allowed(ctx.settings.policy_held_max):
            stored = await _held(request, agent.group, if_none_match, wait_s)
        else:
            # Not held, and not claimed as held: the agent falls back to its timed poll.
            ctx.metrics.policy_not_held.inc()
            wait_s = 0.0
    applied = {"Preference-Applied": f"wait={wait_s:g}"} if wait_s > 0 else {}
    if stored is None:
        raise ApiError(
            404,
            "no_policy",
            f"no policy has been published for group {agent.group!r}; the agent "
            "keeps its local policy",
            headers=applied,
        )
    bundle = stored.for_agents()
    headers = {
        "ETag": bundle.etag,
        "Cache-Control": "no-cache",
        "X-Courtguard-Policy-Version": str(bundle.version),
        "X-Courtguard-Group": agent.group,
    }
    headers.update(applied)
    if _matches(if_none_match, bundle.etag):
        ctx.metrics.policy_fetches.labels("304").inc()
        return Response(status_code=304, headers=headers)
    ctx.metrics.policy_fetches.labels("200").inc()
    headers["X-Courtguard-Signature"] = bundle.signature
    if ctx.policy_key is not None:
        headers["X-Courtguard-Signature-Algorithm"] = signature_algorithm(ctx.policy_key)
    return Response(bundle.body, media_type="application/json", headers=headers)


async def _held(
    request: Request, group: str, if_none_match: str | None, wait_s: float
) -> StoredBundle | None:
    """Wait until the group has a bundle other than the one the agent has (or any, when it
    has none yet), the wait ends or the server stops; the group's newest bundle then."""
    ctx = context(request)
    waits = policy_waits(request.app)
    deadline = time.monotonic() + wait_s
    stored = None
    waits.waiting += 1
    waits.watch(ctx.policies, max(ctx.settings.policy_refresh_s, MIN_CHECK_S))
    try:
        while (remaining := deadline - time.monotonic()) > 0 and not waits.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await waits.changed.wait()
            stored = await ctx.policies.for_group(group)
            if stored is not None and not _matches(if_none_match, stored.for_agents().etag):
                break
    finally:
        waits.waiting -= 1
    return stored


@admin_router.get("/api/v1/policies")
async def policies(request: Request) -> Response:
    """Every version (note, author, group, action) and how many agents run each."""
    ctx = context(request)
    status = await run_in_threadpool(policy_status, ctx.db, ctx.policy_key)
    return json_response(status)
