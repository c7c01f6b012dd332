"""The source: real folders read through its folder reader, each content handed over once."""

from __future__ import annotations

import asyncio
import contextlib
import io
import zipfile
from pathlib import Path

from agent.detectors.documents.observations import DocumentObservation
from agent.detectors.documents.policy import DocumentWatch
from agent.detectors.documents.source import DocumentsSource
from tests.agent.detectors.documents.conftest import NAMED

#: Upper bound on waiting for observations that must come; the wait ends when they do. Each
#: document costs an extraction child, seconds apiece on a loaded machine.
ARRIVAL_BOUND_S = 120.0


async def _collect(source: DocumentsSource, count: int, wait_s: float) -> list[DocumentObservation]:
    seen: list[DocumentObservation] = []

    async def run() -> None:
        async for observation in source.observations():
            seen.append(observation)
            if len(seen) >= count:
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), wait_s)
    return seen


def test_watched_folder_scanned_once_per_content(tmp_path: Path) -> None:
    folder = tmp_path / "publish"
    folder.mkdir()
    (folder / "before.txt").write_text(NAMED)  # already there when the agent starts
    source = DocumentsSource(DocumentWatch(folders=[str(folder)], settle_s=0.3), tmp_path)

    async def scenario() -> list[DocumentObservation]:
        task = asyncio.ensure_future(_collect(source, 3, ARRIVAL_BOUND_S))
        await asyncio.sleep(1.0)
        (folder / "sub").mkdir()
        (folder / "sub" / "王小明.txt").write_text(NAMED + "补充。")
        (folder / "copy.txt").write_text(NAMED)  # same content as before.txt: not again
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("word/document.xml", b"A" * (300 * 1024 * 1024))
        (folder / "bomb.docx").write_bytes(buffer.getvalue())
        (folder / "notes.xlsx").write_bytes(b"x")
        return await task

    observations = asyncio.run(scenario())
    by_name = {Path(o.path).name: o for o in observations}
    assert set(by_name) == {"before.txt", "王小明.txt", "bomb.docx"}
    assert by_name["bomb.docx"].error and "压缩炸弹" in by_name["bomb.docx"].error
    assert by_name["王小明.txt"].folder == str(folder)
    assert (tmp_path / "documents-scanned.txt").read_text().count("\n") == 3
    stamps = (tmp_path / "documents-stamps.txt").read_text()
    assert len(stamps.splitlines()) == 4  # copy.txt was hashed too, then found known
    assert "王小明" not in stamps and "publish" not in stamps
    # A restart remembers what it scanned.
    again = DocumentsSource(DocumentWatch(folders=[str(folder)], settle_s=0.3), tmp_path)
    assert asyncio.run(_collect(again, 1, 2.5)) == []


def test_huge_file_is_reported_without_being_parsed(tmp_path: Path) -> None:
    folder = tmp_path / "publish"
    folder.mkdir()
    (folder / "huge.txt").write_bytes(b"x" * 4096)
    watch = DocumentWatch(folders=[str(folder)], settle_s=0.2, max_file_bytes=1024)
    (observation,) = asyncio.run(_collect(DocumentsSource(watch, None), 1, ARRIVAL_BOUND_S))
    assert observation.error and "过大" in observation.error and observation.size > 1024
