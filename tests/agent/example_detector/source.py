"""The example source: its one reader's observation, then idle until cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from agent.detector import SourceContext, SourceUnavailable
from tests.agent.example_detector.observations import CountObserved
from tests.agent.example_detector.readers.counter import COUNT_FILE, read_count


class ExampleSource:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def observations(self) -> AsyncIterator[CountObserved]:
        try:
            observed = await asyncio.to_thread(read_count, self.path)
        except (OSError, ValueError) as exc:
            raise SourceUnavailable(f"{self.path} holds no count: {exc}") from exc
        yield observed
        await asyncio.Event().wait()  # a real source runs until the daemon cancels it


def make_source(context: SourceContext) -> ExampleSource:
    return ExampleSource(Path(context.settings.data_dir) / COUNT_FILE)
