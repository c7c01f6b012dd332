"""What the API serves agents: the newest bundle per group, from memory on the common path.

An agent polls every minute and nearly always already has the newest bundle,
so the unchanged poll must cost almost nothing:

1. the agent's identity comes from ``IdentityCache`` (a few seconds' memory of
   ``agent_id:secret`` checks), not a database read;
2. ``PolicyCache`` keeps each group's newest bundle in memory and, at most once
   every ``policy_refresh_s``, reads the one-row version counter; when another
   process (``policy publish``, a second collector) moved it, the groups are
   looked up again. A publish is therefore served everywhere within
   ``policy_refresh_s``;
3. the ETag (version and digest) is precomputed, so a matching If-None-Match
   is answered 304 without touching the body.

A group's bundle is verified when it is read into the cache (once per
version and group, ``collector/policy/rejections.py``): a row that fails is
reported (``collector.policy_rejected``) and never served; the group is served
its newest bundle that verifies instead (agents on the newer version keep it,
refusing the older one as a replay), or 404 ``no_policy`` when none does.

Agents are served each bundle's agent body (``StoredBundle.for_agents``), which
leaves out collector-only kinds. A bundle stored before migration 0006 has
none and is served whole; the first time this process serves such a version
it logs a warning that publishing again (or promoting, or rolling back) takes
the collector-only kinds off the agents.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Final

import structlog
from starlette.concurrency import run_in_threadpool

from collector import credentials
from collector.errors import StoreError
from collector.policy.rejections import RejectionReporter, newest_verified
from collector.store.agents import AgentIdentity
from collector.store.database import Database
from collector.store.policies import StoredBundle, latest_for_group, latest_version

log = structlog.get_logger("collector.policy")

#: More cached identities than this and the cache starts over (a bound, not an eviction policy).
MAX_IDENTITIES: Final = 200_000


class PolicyCache:
    """Each group's newest bundle, revalidated against the version counter; see module doc."""

    def __init__(self, db: Database, refresh_s: float, public_key: str | None = None,
                 reporter: RejectionReporter | None = None) -> None:
        self._db = db
        self._refresh_s = refresh_s
        self._public_key = public_key
        self._reporter = reporter or RejectionReporter(db)
        self._checked = -math.inf
        self._version: int | None = None
        self._by_group: dict[str, StoredBundle | None] = {}
        self._warned: set[int] = set()  # versions served whole, already logged
        self.reads = 0  # database reads made, for tests and the benchmark

    def invalidate(self) -> None:
        self._checked = -math.inf

    @property
    def known_version(self) -> int | None:
        """The version counter as last read (no database read)."""
        return self._version

    async def version(self) -> int | None:
        """The version counter, read again when older than ``refresh_s``."""
        await self._revalidate()
        return self._version

    async def _revalidate(self) -> None:
        if time.monotonic() - self._checked >= self._refresh_s:
            version = await run_in_threadpool(latest_version, self._db)
            self.reads += 1
            self._checked = time.monotonic()
            if version != self._version:
                self._by_group = {}
                self._version = version

    async def for_group(self, group: str) -> StoredBundle | None:
        await self._revalidate()
        if group in self._by_group:
            return self._by_group[group]
        seen = self._version
        bundle = await run_in_threadpool(self._newest_servable, group)
        self.reads += 1
        if self._version == seen:  # not replaced by a newer counter meanwhile
            self._by_group[group] = bundle
        if bundle is not None and not bundle.has_agent_body and bundle.version not in self._warned:
            self._warned.add(bundle.version)
            log.warning(
                "policy bundle stored before migration 0006 has no agent body: agents are "
                "served the full bundle, collector-only kinds included; publish, promote or "
                "roll back to issue a new version without them",
                version=bundle.version, group=bundle.group,
            )
        return bundle

    def _newest_servable(self, group: str) -> StoredBundle | None:
        """The newest bundle for ``group`` that verifies (every one, without a key file)."""
        if self._public_key is None:
            return latest_for_group(self._db, group)
        found = newest_verified(self._db, group, self._public_key, self._reporter)
        return None if found is None else found[0]

    async def hint(self, group: str) -> str | None:
        """The version an agent of ``group`` should run, for ``IngestResult.policy_version``.

        The batch is already stored when this is asked: a store failure here
        only drops the hint (the agent's next poll finds the version anyway).
        """
        try:
            bundle = await self.for_group(group)
        except StoreError as exc:
            log.warning("policy hint unavailable", error=str(exc))
            return None
        return None if bundle is None else str(bundle.version)


class IdentityCache:
    """Remembers successful agent authentications for ``ttl_s``; revocation shows after that."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._known: dict[tuple[str, str], tuple[AgentIdentity, float]] = {}

    async def authenticate(
        self,
        agent_id: str,
        secret: str,
        lookup: Callable[[str, str], Awaitable[AgentIdentity | None]],
    ) -> AgentIdentity | None:
        key = (agent_id, credentials.digest(secret))
        hit = self._known.get(key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        identity = await lookup(agent_id, secret)
        if identity is not None and not identity.revoked and self._ttl_s > 0:
            if len(self._known) >= MAX_IDENTITIES:
                self._known = {}
            self._known[key] = (identity, now + self._ttl_s)
        return identity
