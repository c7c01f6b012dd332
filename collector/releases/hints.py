"""What each ingest answer says about releases: the newest release row for the agent's group.

Every batch answer carries it (``IngestResult.release_sequence``), so the common
path reads nothing: the newest row id per group is kept in memory and the
store's highest id is checked at most every ``refresh_s`` (as
``collector.isolation.hints`` does for isolation orders). An agent that has
not yet looked at that row asks ``GET /api/v1/release`` for its architecture.
"""

from __future__ import annotations

import math
import time

import structlog
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from collector.errors import StoreError
from collector.releases.store import hint_map
from collector.store.database import Database
from collector.store.tables import agent_releases

log = structlog.get_logger("collector.releases")


def _highest(db: Database) -> int | None:
    with db.read() as conn:
        found: int | None = conn.execute(select(func.max(agent_releases.c.id))).scalar()
        return found


class ReleaseHints:
    def __init__(self, db: Database, refresh_s: float) -> None:
        self._db = db
        self._refresh_s = refresh_s
        self._checked = -math.inf
        self._top: int | None = None
        self._by_group: dict[str | None, int] = {}
        self.reads = 0

    def invalidate(self) -> None:
        self._checked = -math.inf

    async def for_group(self, group: str) -> int | None:
        """The newest release row for ``group`` or all groups; None without one or on failure."""
        try:
            if time.monotonic() - self._checked >= self._refresh_s:
                top = await run_in_threadpool(_highest, self._db)
                self.reads += 1
                self._checked = time.monotonic()
                if top != self._top:
                    top, self._by_group = await run_in_threadpool(hint_map, self._db)
                    self.reads += 1
                    self._top = top
        except StoreError as exc:
            log.warning("release hint unavailable", error=str(exc))
            return None
        found = [n for n in (self._by_group.get(group), self._by_group.get(None)) if n]
        return max(found) if found else None
