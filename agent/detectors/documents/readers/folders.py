"""Watch the publication folders and hand over each file once it has settled.

watchdog reports file events from its own thread; they only mark a path as
pending. At start and after the watched folders change, the folders are
walked once, off the event loop, so documents already there are marked too.
A pending file is handed over when it has been quiet for ``settle_s`` and its
size and modification time did not change between two looks (a copy still in
progress is left alone). With nothing pending the reader sleeps until watchdog
reports a change: an idle agent is not woken by a timer here. What the file
holds, and whether it was seen before, is the source's business
(``agent.detectors.documents.source``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, Final

import structlog

from agent.detector import SourceUnavailable
from agent.detectors.documents.policy import DocumentWatch

log = structlog.get_logger("courtguard.documents")

#: Shortest wait between two looks at pending files: a file written in many small
#: chunks marks itself again and again, and each mark must not cost a look.
MIN_LOOK_S: Final = 0.1


class FolderWatcher:
    """Yields the path of each settled file with a watched extension under ``watch.folders``."""

    def __init__(self, watch: DocumentWatch) -> None:
        self.watch = watch
        self._walk_pending = False
        self._pending: dict[Path, float] = {}
        self._last_stat: dict[Path, tuple[int, int]] = {}
        self._observer: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._marked: asyncio.Event | None = None

    def retarget(self, watch: DocumentWatch) -> None:
        """Watch what ``watch`` names from now on (the folders are walked again)."""
        if watch != self.watch:
            self.watch = watch
            self._restart_observer()

    def _mark(self, path: str) -> None:
        candidate = Path(path)
        if candidate.suffix.lower() in self.watch.extensions and not candidate.name.startswith(
            "~$"
        ):
            self._pending[candidate] = time.monotonic()
            self._wake()

    def _wake(self) -> None:
        if self._marked is not None:
            self._marked.set()

    def _stop_observer(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None

    def _restart_observer(self) -> None:
        self._stop_observer()
        if self._loop is None or not self.watch.folders:
            return  # nothing to watch: watchdog is not even imported
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError as exc:
            raise SourceUnavailable("the watchdog library is not installed") from exc
        loop: asyncio.AbstractEventLoop = self._loop
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.is_directory or event.event_type not in (
                    "created",
                    "modified",
                    "moved",
                    "closed",
                ):
                    return
                target = getattr(event, "dest_path", "") or event.src_path
                loop.call_soon_threadsafe(watcher._mark, os.fsdecode(target))

        observer = Observer()
        watched = 0
        for folder in self.watch.folders:
            if Path(folder).is_dir():
                observer.schedule(Handler(), folder, recursive=True)
                watched += 1
            else:
                log.warning("publication folder missing", folder=folder)
        observer.daemon = True
        observer.start()
        self._observer = observer
        # Documents already in the folders are checked once too, found off the event loop.
        self._walk_pending = True
        self._wake()
        log.info("watching publication folders", folders=watched)

    async def settled(self) -> AsyncGenerator[Path, None]:
        """Every settled file, as it settles, until cancelled or closed."""
        self._loop = asyncio.get_running_loop()
        self._marked = asyncio.Event()
        self._restart_observer()
        try:
            while True:
                await self._until_due()
                if self._walk_pending:
                    self._walk_pending = False
                    for existing in await asyncio.to_thread(self._existing):
                        self._mark(existing)
                for path in self._settled():
                    yield path
        finally:
            self._stop_observer()

    async def _until_due(self) -> None:
        """Wait for the earliest pending file to be due a look, or for the first mark."""
        assert self._marked is not None  # noqa: S101 (set by settled before it waits)
        if not self._pending and not self._walk_pending:
            await self._marked.wait()
        self._marked.clear()
        if self._pending:
            # New marks are due later than the earliest one already pending: no need to wake.
            due = min(self._pending.values()) + self.watch.settle_s - time.monotonic()
            await asyncio.sleep(max(MIN_LOOK_S, due))
        else:
            await asyncio.sleep(MIN_LOOK_S)  # marks come in bursts: take the burst in one look

    def _existing(self) -> list[str]:
        return [
            os.path.join(root, name)
            for folder in self.watch.folders
            for root, _dirs, names in os.walk(folder)
            for name in names
        ]

    def _settled(self) -> list[Path]:
        now = time.monotonic()
        ready = []
        for path, touched in list(self._pending.items()):
            if now - touched < self.watch.settle_s:
                continue
            try:
                stat = path.stat()
            except OSError:
                self._pending.pop(path, None)
                self._last_stat.pop(path, None)
                continue
            fingerprint = (stat.st_size, stat.st_mtime_ns)
            if self._last_stat.get(path) != fingerprint:
                self._last_stat[path] = fingerprint
                self._pending[path] = now
                continue
            self._pending.pop(path, None)
            self._last_stat.pop(path, None)
            ready.append(path)
        return ready
