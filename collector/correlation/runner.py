"""Runs every correlation pass over the store, each on its own interval, until shutdown.

A pass reads what agents sent (the ``agents`` table, stored events), hands it
to a pure decision (``collector.correlation.liveness``, a correlator) and
stores what that concludes as events whose ids derive from the conclusion, so
a pass run twice (two processes at a lease handover) stores each conclusion
once. Each pass runs through ``run_periodically``: in a worker thread, a
failure logged and retried next interval, shutdown waiting for a pass under
way, and with several collector processes only in the one holding the pass's
lease (``correlation:<label>``), so the work is not done twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from agent.events import Event, utcnow
from collector.periodic import run_periodically
from collector.store.leases import LeaseKeeper


class CorrelationPass(Protocol):
    """One pass: ``check(now)`` stores and returns the events this process made."""

    #: What the log calls the pass when one fails.
    label: str
    interval_s: float

    def check(self, now: datetime) -> list[Event]: ...


class CorrelationRunner:
    """The passes a collector process runs; ``run`` until cancelled."""

    def __init__(
        self, passes: Sequence[CorrelationPass], clock: Callable[[], datetime] = utcnow,
        leases: LeaseKeeper | None = None,
    ) -> None:
        self.passes = tuple(passes)
        self.clock = clock
        self.leases = leases

    async def run(self) -> None:
        """Every pass on its own interval; cancelling waits for the passes under way."""
        # A TaskGroup, not gather: cancelled, it waits for every pass to end, where gather
        # returns as soon as the first idle pass has been cancelled.
        async with asyncio.TaskGroup() as group:
            for each in self.passes:
                group.create_task(
                    run_periodically(each.label, self._checker(each), each.interval_s,
                                     leases=self.leases, lease=f"correlation:{each.label}"),
                    name=f"correlation: {each.label}",
                )

    def _checker(self, each: CorrelationPass) -> Callable[[], list[Event]]:
        return lambda: each.check(self.clock())
