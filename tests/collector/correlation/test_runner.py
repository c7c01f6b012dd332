"""The correlation runner: each pass on its own interval, shutdown waits for a pass under way."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from datetime import UTC, datetime

from agent.events import Event
from collector.correlation.runner import CorrelationRunner

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class RecordingPass:
    """A pass that records the times it was asked to check at, optionally blocking first."""

    def __init__(self, label: str, interval_s: float, hold: threading.Event | None = None) -> None:
        self.label = label
        self.interval_s = interval_s
        self.hold = hold
        self.calls: list[datetime] = []
        self.started = threading.Event()
        self.finished = threading.Event()
        self.ran_twice = threading.Event()

    def check(self, now: datetime) -> list[Event]:
        self.started.set()
        if self.hold is not None:
            deadline = time.monotonic() + 5
            while not self.hold.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)
        self.calls.append(now)
        self.finished.set()
        if len(self.calls) >= 2:
            self.ran_twice.set()
        return []


def test_each_pass_runs_on_its_own_interval_with_the_runners_clock() -> None:
    """A frequent pass runs again and again while an hourly one has not run yet."""
    frequent, hourly = RecordingPass("frequent", 0.01), RecordingPass("hourly", 3600)
    async def scenario() -> None:
        task = asyncio.create_task(CorrelationRunner([frequent, hourly], clock=lambda: NOW).run())
        await asyncio.to_thread(frequent.ran_twice.wait, 5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert len(frequent.calls) >= 2 and set(frequent.calls) == {NOW}
    assert hourly.calls == []


def test_cancel_waits_for_the_pass_under_way() -> None:
    """Cancelling the runner returns only after a pass running in its thread has ended."""
    release = threading.Event()
    slow = RecordingPass("slow", 0.01, hold=release)

    async def scenario() -> None:
        task = asyncio.create_task(CorrelationRunner([slow, RecordingPass("idle", 3600)]).run())
        await asyncio.to_thread(slow.started.wait, 5)
        task.cancel()
        await asyncio.sleep(0.05)
        running_when_cancelled = not task.done()
        release.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert running_when_cancelled, "the runner returned while a pass was still running"
        assert slow.finished.is_set()

    asyncio.run(asyncio.wait_for(scenario(), 10))
