"""Store work in a worker thread that a cancelled background task still waits for.

Cancelling the coroutine that awaits a worker thread does not stop the thread. At
shutdown the application disposes of the store right after cancelling its background
tasks; a thread still inside a pass would then hand its connection back to a pool
that no longer exists, and the connection would be dropped open. Every background
task therefore runs its store work through ``finish_in_thread``: on cancellation it
waits for the thread to end, then lets the cancellation through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

P = ParamSpec("P")
T = TypeVar("T")


async def finish_in_thread(
    work: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``work(*args, **kwargs)`` in a worker thread, awaited to its end even when cancelled."""
    current = asyncio.ensure_future(run_in_threadpool(work, *args, **kwargs))
    try:
        return await asyncio.shield(current)
    except asyncio.CancelledError:
        await asyncio.gather(current, return_exceptions=True)
        raise
