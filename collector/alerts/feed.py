"""In-process delivery of the alert change feed to asyncio subscribers (the alert router).

The durable feed is the ``alert_changes`` table; this task tails it from the
newest id at start-up, so subscribers hear about changes made by any process
(ingest in a second collector, the CLI, the monitor) in id order, once each.
``poke()`` (thread-safe) makes it look at once instead of at the next poll;
ingest and the console poke after they commit.

A subscriber that must not miss anything across restarts keeps its own cursor:
subscribe first, then read ``service.changes_since(cursor)`` until it returns
nothing, then take changes from the queue, skipping ids at or below the cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import structlog
from starlette.concurrency import run_in_threadpool

from collector.alerts import service
from collector.alerts.grouping import AlertChange
from collector.store.database import Database

log = structlog.get_logger("collector.alerts.feed")
T = TypeVar("T")

#: How many undelivered changes one subscriber may hold before the oldest are dropped.
QUEUE_LIMIT = 10_000


async def _finished(work: Coroutine[Any, Any, T]) -> T:
    """Await ``work``; if cancelled meanwhile, let its store thread finish first, then cancel.

    Shutdown disposes of the store right after cancelling this task; a thread
    still reading would otherwise be left holding a connection.
    """
    current = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(current)
    except asyncio.CancelledError:
        await asyncio.gather(current, return_exceptions=True)
        raise


class AlertFeed:
    def __init__(self, db: Database, poll_interval_s: float = 1.0) -> None:
        self.db = db
        self.poll_interval_s = poll_interval_s
        self.cursor = 0
        self._subscribers: set[asyncio.Queue[AlertChange]] = set()
        self._wake = asyncio.Event()
        #: Set once the feed knows its starting cursor and delivers.
        self.ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[AlertChange]]:
        """A queue receiving every change committed from now on, until the block ends."""
        queue: asyncio.Queue[AlertChange] = asyncio.Queue(QUEUE_LIMIT)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    def poke(self) -> None:
        """Look for changes now; callable from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Tail the feed until cancelled."""
        self.cursor = await _finished(run_in_threadpool(service.latest_change, self.db))
        self._loop = asyncio.get_running_loop()
        self.ready.set()
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel
            # that lands with a wake, and shutdown then waits forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await _finished(self.deliver())
            except Exception as exc:  # the store is down: try again next poll
                log.error("alert feed read failed", error=str(exc))

    async def deliver(self) -> int:
        """Hand every change past the cursor to every subscriber; return how many."""
        delivered = 0
        while True:
            changes = await run_in_threadpool(service.changes_since, self.db, self.cursor)
            if not changes:
                return delivered
            for change in changes:
                for queue in list(self._subscribers):
                    if queue.full():
                        queue.get_nowait()
                        log.warning("alert feed subscriber too slow; oldest change dropped")
                    queue.put_nowait(change)
            self.cursor = changes[-1].id
            delivered += len(changes)
