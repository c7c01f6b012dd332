"""The documents detector's one source: each settled, new document handed to the detector once.

1. ``readers.folders`` watches the publication folders and hands over each
   file once it has settled (quiet for ``settle_s``, size and mtime unchanged);
2. a file whose size and mtime match the last time it was hashed is skipped
   unread; otherwise each content hash is scanned once, also across restarts
   (small files of hashes in the data directory);
3. extraction runs in a short-lived child process (``checker.child``) under
   the memory and CPU limits of ``checker.worker``, so a hostile file can cost
   that child, never the agent; the agent process itself never imports the
   extraction libraries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import structlog

from agent.detector import SourceContext
from agent.detectors.documents.observations import DocumentObservation, DocumentPart
from agent.detectors.documents.policy import DocumentsPolicy, DocumentWatch
from agent.detectors.documents.readers.folders import FolderWatcher
from agent.frozen import child_command, child_environment

log = structlog.get_logger("courtguard.documents")

#: Content hashes remembered as already scanned (oldest forgotten first).
MAX_SEEN: Final = 100_000
#: Largest JSON a scan child may print (the extracted text of a long judgment is far less).
MAX_CHILD_OUTPUT: Final = 256 * 1024 * 1024
CHILD_TIMEOUT_S: Final = 120.0


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
        *child_command("agent.detectors.documents.checker.child", str(path), str(max_file_bytes)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=MAX_CHILD_OUTPUT,
        env=child_environment(),
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
        self.folders = FolderWatcher(watch)
        self.seen = RememberedKeys(data_dir / "documents-scanned.txt" if data_dir else None)
        #: Size and mtime of each file already hashed (by a hash of its path): a restart
        #: over a large published tree does not read every file again.
        self.stamps = RememberedKeys(data_dir / "documents-stamps.txt" if data_dir else None)

    @property
    def watch(self) -> DocumentWatch:
        return self.folders.watch

    def update_policy(self, section: DocumentsPolicy) -> None:
        self.folders.retarget(section.watch)

    async def observations(self) -> AsyncIterator[DocumentObservation]:
        async with contextlib.aclosing(self.folders.settled()) as settled:
            async for path in settled:
                observation = await self._observe(path)
                if observation is not None:
                    yield observation

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
