"""What each ingest answer says about isolation: the agent's newest order's sequence.

Every batch answer carries it (``IngestResult.isolation_sequence``), so the
common path must not read the store: the map of each agent's newest sequence
is kept in memory and the store's highest sequence (one indexed read) is
checked at most every ``refresh_s``; only when it moved is the map read
again. An order made by this process invalidates at once; one made by
another process is hinted within ``refresh_s``.
"""

from __future__ import annotations

import math
import time

import structlog
from starlette.concurrency import run_in_threadpool

from collector.errors import StoreError
from collector.isolation.orders import highest_sequence, newest_sequences
from collector.store.database import Database

log = structlog.get_logger("collector.isolation")


class IsolationHints:
    def __init__(self, db: Database, refresh_s: float) -> None:
        self._db = db
        self._refresh_s = refresh_s
        self._checked = -math.inf
        self._top: int | None = None
        self._by_agent: dict[str, int] = {}
        self.reads = 0

    def invalidate(self) -> None:
        self._checked = -math.inf

    async def for_agent(self, agent_id: str) -> int | None:
        """The agent's newest order sequence, or None; a store failure only drops the hint."""
        try:
            if time.monotonic() - self._checked >= self._refresh_s:
                top = await run_in_threadpool(highest_sequence, self._db)
                self.reads += 1
                self._checked = time.monotonic()
                if top != self._top:
                    top, self._by_agent = await run_in_threadpool(newest_sequences, self._db)
                    self.reads += 1
                    self._top = top
        except StoreError as exc:
            log.warning("isolation hint unavailable", error=str(exc))
            return None
        return self._by_agent.get(agent_id)
