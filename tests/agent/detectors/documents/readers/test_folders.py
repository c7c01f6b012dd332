"""The folder reader: a real watchdog observer over real folders, each settled file handed over."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from structlog.testing import capture_logs

from agent.detectors.documents.policy import DocumentWatch
from agent.detectors.documents.readers.folders import FolderWatcher

#: Upper bound on waiting for paths that must come; the wait ends as soon as they do.
ARRIVAL_BOUND_S = 60.0


async def _until(
    watcher: FolderWatcher, expected: set[Path], during: Callable[[], None] = lambda: None
) -> list[Path]:
    """Every path handed over until all ``expected`` came; ``during`` runs once watching."""
    seen: list[Path] = []

    async def run() -> None:
        async for path in watcher.settled():
            seen.append(path)
            if expected <= set(seen):
                return

    task = asyncio.ensure_future(run())
    await asyncio.sleep(0)  # the watcher starts its observer before ``during`` changes things
    during()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(task, ARRIVAL_BOUND_S)
    return seen


def test_existing_and_new_files_are_handed_over_once_and_others_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "publish"
    folder.mkdir()
    (folder / "before.txt").write_text("已在")  # there before watching starts: found by the walk
    watcher = FolderWatcher(DocumentWatch(folders=[str(folder)], settle_s=0.1))
    expected = {folder / "before.txt", folder / "sub" / "判决书.DOCX", folder / "zz-last.pdf"}

    def write() -> None:
        (folder / "sub").mkdir()
        (folder / "sub" / "判决书.DOCX").write_bytes(b"x")  # extensions compare in lower case
        (folder / "notes.xlsx").write_bytes(b"x")  # not a watched extension
        (folder / "~$判决书.docx").write_bytes(b"x")  # Word's lock file
        (folder / "zz-last.pdf").write_bytes(b"%PDF")  # last: what came before is marked by now

    seen = asyncio.run(_until(watcher, expected, write))
    assert set(seen) == expected
    assert len(seen) == len(set(seen))


def test_a_file_changing_between_two_looks_waits_until_it_stops(tmp_path: Path) -> None:
    growing = tmp_path / "copying.docx"
    growing.write_bytes(b"part one")
    watcher = FolderWatcher(DocumentWatch(folders=[str(tmp_path)], settle_s=0.1))
    watcher._mark(str(growing))
    time.sleep(0.15)  # quiet for settle_s: the first look only notes size and mtime
    assert watcher._settled() == []
    with growing.open("ab") as out:
        out.write(b" and part two")
    time.sleep(0.15)
    assert watcher._settled() == []  # changed since the first look: wait again
    time.sleep(0.15)
    assert watcher._settled() == [growing]
    assert watcher._settled() == []  # handed over once


def test_a_file_gone_before_it_settles_is_forgotten(tmp_path: Path) -> None:
    fleeting = tmp_path / "tmp.txt"
    fleeting.write_text("x")
    watcher = FolderWatcher(DocumentWatch(folders=[str(tmp_path)], settle_s=0.1))
    watcher._mark(str(fleeting))
    fleeting.unlink()
    time.sleep(0.15)
    assert watcher._settled() == []
    assert not watcher._pending


def test_retargeted_folders_are_walked_and_a_missing_one_is_logged(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    waiting = second / "已在新目录.txt"
    waiting.write_text("x")
    watcher = FolderWatcher(DocumentWatch(folders=[str(first)], settle_s=0.1))
    missing = str(tmp_path / "gone")

    def move() -> None:
        watcher.retarget(DocumentWatch(folders=[missing, str(second)], settle_s=0.1))

    with capture_logs() as logs:
        seen = asyncio.run(_until(watcher, {waiting}, move))
    assert seen == [waiting]
    assert {"event": "publication folder missing", "folder": missing, "log_level": "warning"} in [
        {k: entry[k] for k in ("event", "folder", "log_level") if k in entry} for entry in logs
    ]
