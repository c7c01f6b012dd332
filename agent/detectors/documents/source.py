"""Watch the publication folders and hand each settled, new document to the detector once.

watchdog reports file events from its own thread; they only mark a path as
pending. A file is read when it has been quiet for ``settle_s`` and its size
and modification time did not change between two looks (a copy still in
progress is left alone). Each content hash is scanned once, also across
restarts (a small file of hashes in the data directory). Extraction runs in a
short-lived child process (``checker.child``) under the memory and CPU limits
of ``checker.worker``, so a hostile file can cost that child, never the agent;
the agent process itself never imports the extraction libraries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import structlog

from agent.detector import SourceContext, SourceUnavailable
from agent.detectors.documents.observations import DocumentObservation, DocumentPart
from agent.detectors.documents.policy import DocumentsPolicy, DocumentWatch

log = structlog.get_logger("courtguard.documents")

#: Content hashes remembered as already scanned (oldest forgotten first).
MAX_SEEN: Final = 100_000
#: Largest JSON a scan child may print (the extracted text of a long judgment is far less).
MAX_CHILD_OUTPUT: Final = 256 * 1024 * 1024
CHILD_TIMEOUT_S: Final = 120.0
POLL_S: Final = 0.5


class RememberedKeys:
    """Keys (and a short value) remembered across restarts, one ``key value`` line each.

    Appends while it grows; when it passes ``MAX_SEEN`` the oldest half of a
    percent is forgotten and the file rewritten. Keys and values are ASCII (hashes,
    numbers): the file never holds a path or a name.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: OrderedDict[str, str] = OrderedDict()
        if path is not None and path.exists():
            for line in path.read_text("ascii", errors="ignore").splitlines():
                key, _, value = line.partition(" ")
                if key:
                    self.entries[key] = value
                    self.entries.move_to_end(key)
            while len(self.entries) > MAX_SEEN:
                self.entries.popitem(last=False)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def add(self, key: str, value: str = "") -> None:
        self.entries[key] = value
        self.entries.move_to_end(key)
        if self.path is None:
            return
        if len(self.entries) > MAX_SEEN:
            while len(self.entries) > MAX_SEEN * 0.995:
                self.entries.popitem(last=False)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(f"{k} {v}\n" for k, v in self.entries.items()), "ascii")
            os.replace(tmp, self.path)
        else:
            with self.path.open("a", encoding="ascii") as out:
                out.write(f"{key} {value}\n")


def _identity(path: Path, limit: int, known_stamp: str | None) -> tuple[str, str | None, int]:
    """(size:mtime stamp, content hash or None when the stamp is the known one, size)."""
    stat = path.stat()
    stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
    if stamp == known_stamp:
        return stamp, None, stat.st_size
    digest, size = _sha256(path, limit)
    return stamp, digest, size


def _sha256(path: Path, limit: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1024 * 1024):
            size += len(chunk)
            if size > limit:
                break
            digest.update(chunk)
    return digest.hexdigest(), size


async def extract_in_child(
    path: Path, max_file_bytes: int
) -> tuple[list[DocumentPart], str | None]:
    """Run the extraction child (``checker.child``) on ``path``; errors become messages."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent.detectors.documents.checker.child",
        str(path),
        str(max_file_bytes),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=MAX_CHILD_OUTPUT,
    )
    try:
        stdout, _stderr = await asyncio.wait_for(process.communicate(), CHILD_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return [], f"审查超时（{CHILD_TIMEOUT_S:.0f} 秒），疑似异常文件，未审查"
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise
    if process.returncode != 0:
        return [], "审查进程因超出内存或时间上限而终止，疑似恶意或异常文件，未审查"
    try:
        answer: dict[str, Any] = json.loads(stdout)
    except ValueError:
        return [], "审查进程输出无法解析，未审查"
    if answer.get("error"):
        return [], str(answer["error"])[:500]
    return [DocumentPart(name=p["name"], text=p["text"]) for p in answer["parts"]], None


class DocumentsSource:
    """Yields one ``DocumentObservation`` per new document content in the watched folders."""

    def __init__(self, watch: DocumentWatch, data_dir: Path | None) -> None:
        self.watch = watch
        self.seen = RememberedKeys(data_dir / "documents-scanned.txt" if data_dir else None)
        #: Size and mtime of each file already hashed (by a hash of its path): a restart
        #: over a large published tree does not read every file again.
        self.stamps = RememberedKeys(data_dir / "documents-stamps.txt" if data_dir else None)
        self._walk_pending = False
        self._pending: dict[Path, float] = {}
        self._last_stat: dict[Path, tuple[int, int]] = {}
        self._wake = asyncio.Event()
        self._observer: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def update_policy(self, section: DocumentsPolicy) -> None:
        if section.watch != self.watch:
            self.watch = section.watch
            self._restart_observer()

    def _mark(self, path: str) -> None:
        candidate = Path(path)
        if candidate.suffix.lower() in self.watch.extensions and not candidate.name.startswith(
            "~$"
        ):
            self._pending[candidate] = time.monotonic()

    def _restart_observer(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None
        if self._loop is None or not self.watch.folders:
            return  # nothing to watch: watchdog is not even imported
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError as exc:
            raise SourceUnavailable("the watchdog library is not installed") from exc
        loop: asyncio.AbstractEventLoop = self._loop
        source = self

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
                loop.call_soon_threadsafe(source._mark, os.fsdecode(target))

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
        log.info("watching publication folders", folders=watched)

    async def observations(self) -> AsyncIterator[DocumentObservation]:
        self._loop = asyncio.get_running_loop()
        self._restart_observer()
        try:
            while True:
                await asyncio.sleep(POLL_S)
                if self._walk_pending:
                    self._walk_pending = False
                    for existing in await asyncio.to_thread(self._existing):
                        self._mark(existing)
                for path in self._settled():
                    observation = await self._observe(path)
                    if observation is not None:
                        yield observation
        finally:
            if self._observer is not None:
                self._observer.stop()
                self._observer.join(5)

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

    def _folder_of(self, path: Path) -> str:
        for folder in self.watch.folders:
            with contextlib.suppress(ValueError):
                path.relative_to(folder)
                return folder
        return ""

    async def _observe(self, path: Path) -> DocumentObservation | None:
        limit = self.watch.max_file_bytes
        where = hashlib.sha256(os.fsencode(path)).hexdigest()[:32]
        try:
            stamp, digest, size = await asyncio.to_thread(
                _identity, path, limit, self.stamps.get(where)
            )
        except OSError as exc:
            log.warning("document unreadable", error=exc.strerror)
            return None
        if digest is None:
            return None  # this very file was hashed before, unchanged since
        self.stamps.add(where, stamp)
        if digest in self.seen:
            return None
        self.seen.add(digest)
        folder = self._folder_of(path)
        if size > limit:
            return DocumentObservation(
                path=str(path),
                sha256=digest,
                size=size,
                folder=folder,
                error=f"文件过大（超过 {limit} 字节），未审查",
            )
        parts, error = await extract_in_child(path, limit)
        return DocumentObservation(
            path=str(path), sha256=digest, size=size, parts=parts, error=error, folder=folder
        )


def make_source(ctx: SourceContext) -> DocumentsSource:
    policy = ctx.policy
    watch = policy.watch if isinstance(policy, DocumentsPolicy) else DocumentWatch()
    data_dir = getattr(ctx.settings, "data_dir", None)
    return DocumentsSource(watch, Path(data_dir) if data_dir else None)
