"""Background passes (silent-agent check, retention) that shutdown waits for.

Each pass runs in a worker thread so the event loop stays free. With several
collector processes on one store, a pass given a ``lease`` runs only in the
process whose ``LeaseKeeper`` holds it (``collector.store.leases``); the others
skip it, and take over within the lease's duration when the holder goes. Cancelling a
thread's awaiter does not stop the thread, so a loop cancelled mid-pass asks
the pass to stop early (``on_cancel``) and waits for it: the store is never
disposed of under a running pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from starlette.concurrency import run_in_threadpool

from collector.store.leases import LeaseKeeper, guarded

log = structlog.get_logger("collector.periodic")


async def run_periodically(
    name: str,
    work: Callable[[], object],
    interval_s: float,
    *,
    first_after_s: float | None = None,
    on_cancel: Callable[[], None] = lambda: None,
    leases: LeaseKeeper | None = None,
    lease: str = "",
) -> None:
    """Run ``work`` every ``interval_s`` (first after ``first_after_s``) until cancelled.

    With ``leases``, a pass runs only while this process holds ``lease``.
    """
    work = guarded(leases, lease or name, work)
    await asyncio.sleep(interval_s if first_after_s is None else first_after_s)
    while True:
        current = asyncio.ensure_future(run_in_threadpool(work))
        try:
            await asyncio.shield(current)
        except asyncio.CancelledError:
            on_cancel()
            await asyncio.gather(current, return_exceptions=True)
            raise
        except Exception as exc:
            log.error(f"{name} failed; trying again next interval", error=str(exc))
        await asyncio.sleep(interval_s)
