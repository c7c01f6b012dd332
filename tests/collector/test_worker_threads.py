"""A background task cancelled mid-pass ends only after its worker thread has."""

from __future__ import annotations

import asyncio
import threading

import pytest

from collector.worker_threads import finish_in_thread


def test_cancelled_task_waits_for_its_thread() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def pass_holding_a_connection() -> str:
        started.set()
        release.wait(timeout=30)
        finished.append("returned the connection")
        return "done"

    async def main() -> None:
        task = asyncio.ensure_future(finish_in_thread(pass_holding_a_connection))
        await asyncio.to_thread(started.wait, 30)
        task.cancel()
        await asyncio.sleep(0)
        assert not task.done()  # still waiting for the thread, not abandoned
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished == ["returned the connection"]

    asyncio.run(main())


def test_result_and_error_come_back() -> None:
    async def main() -> None:
        assert await finish_in_thread(lambda a, b: a + b, 2, b=3) == 5
        with pytest.raises(ZeroDivisionError):
            await finish_in_thread(lambda: 1 // 0)

    asyncio.run(main())
