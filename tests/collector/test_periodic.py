"""Background passes: shutdown waits for the pass in progress."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from collector.periodic import run_periodically


def test_cancel_waits_for_the_running_pass_and_asks_it_to_stop() -> None:
    """A loop cancelled mid-pass returns only after the worker thread's pass has ended."""
    started, finished = threading.Event(), threading.Event()
    stop_asked = threading.Event()

    def work() -> None:
        started.set()
        deadline = time.monotonic() + 5
        while not stop_asked.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        finished.set()

    async def scenario() -> None:
        task = asyncio.create_task(
            run_periodically("test pass", work, 3600, first_after_s=0, on_cancel=stop_asked.set)
        )
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert finished.is_set(), "the loop returned while its pass was still running"

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert stop_asked.is_set()


def test_a_failing_pass_is_retried_next_interval() -> None:
    """An exception in one pass is logged and the loop keeps running."""
    calls: list[int] = []
    third = threading.Event()

    def work() -> None:
        calls.append(1)
        if len(calls) == 3:
            third.set()
        if len(calls) == 1:
            raise RuntimeError("database away")

    async def scenario() -> None:
        task = asyncio.create_task(run_periodically("test pass", work, 0.01, first_after_s=0))
        await asyncio.to_thread(third.wait, 5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert len(calls) >= 3
