"""The agent side: a real watchdog source over a real folder, and the detector's events."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from agent.detectors.documents.detector import DocumentsDetector
from agent.detectors.documents.observations import DocumentObservation
from agent.detectors.documents.policy import DocumentsPolicy, DocumentWatch
from agent.detectors.documents.source import DocumentsSource
from agent.events import EVIDENCE_MODELS, Event, uuid7

NAMED = (
    "刑事判决书\n(2024)京0105刑初9号\n被告人孙某，男，1990年3月1日出生。\n"
    "经审理查明，被告人孙某殴打被害人王小明，王小明的手机号码13812345678。\n"
)


async def _collect(
    source: DocumentsSource, count: int, wait_s: float
) -> list[DocumentObservation]:
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
        task = asyncio.ensure_future(_collect(source, 3, 15))
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


def test_events_carry_no_raw_personal_data(documents_policy: DocumentsPolicy) -> None:
    observation = DocumentObservation(
        path="/srv/publish/王小明案.txt",
        sha256="a" * 64,
        size=10,
        text=NAMED,
        folder="/srv/publish",
    )
    now = datetime(2026, 3, 2, tzinfo=UTC)
    findings = list(DocumentsDetector().evaluate(observation, documents_policy, now))
    kinds = {f.rule_id: f.kind for f in findings}
    assert kinds["documents.protected-person-name"] == "document.pseudonymize"
    assert kinds["documents.mobile-phone"] == "document.redact"
    for finding in findings:
        event = Event(
            id=uuid7(),
            seq=1,
            time=now,
            agent_id=uuid7(),
            host="ws1",
            kind=finding.kind,
            severity=finding.severity,
            rule_id=finding.rule_id,
            summary=finding.summary,
            evidence=finding.evidence,
        )
        assert EVIDENCE_MODELS[event.kind].model_validate(event.evidence)
        wire = json.dumps(event.model_dump(mode="json"), ensure_ascii=False)
        for secret in ("王小明", "13812345678", "小明"):
            assert secret not in wire, (finding.rule_id, wire)
        assert "王某案.txt" in wire


def test_unreadable_document_event(documents_policy: DocumentsPolicy) -> None:
    observation = DocumentObservation(path="/p/张三.docx", size=5, error="文件已损坏")
    (finding,) = DocumentsDetector().evaluate(observation, documents_policy, datetime.now(UTC))
    assert finding.kind == "document.unreadable" and "文件已损坏" in finding.summary
    assert "张三" not in json.dumps(finding.model_dump(mode="json"), ensure_ascii=False)


def test_evidence_stays_within_the_event_limit(documents_policy: DocumentsPolicy) -> None:
    long_part = "页" * 190
    text = "".join(f"联系电话1381234{i:04d}。" for i in range(60))
    observation = DocumentObservation(path="/p/a.txt", parts=[{"name": long_part, "text": text}])
    (finding,) = DocumentsDetector().evaluate(observation, documents_policy, datetime.now(UTC))
    assert finding.evidence["occurrences_total"] == 60
    assert len(json.dumps(finding.evidence, ensure_ascii=False).encode()) <= 16 * 1024
    Event(id=uuid7(), seq=1, time=datetime.now(UTC), agent_id=uuid7(), host="h",
          kind=finding.kind, severity=finding.severity, summary=finding.summary,
          evidence=finding.evidence)


def test_foreign_party_name_is_found(documents_policy: DocumentsPolicy) -> None:
    from agent.detectors.documents.checker.scanner import scan_text

    text = "民事判决书\n原告John Smith，男，1980年1月1日出生，美国国籍。\n原告John Smith诉称。"
    result = scan_text(text, documents_policy, "spc-2024")
    assert [f.replacement for f in result.findings] == ["J", "J"]


def test_huge_file_is_reported_without_being_parsed(tmp_path: Path) -> None:
    folder = tmp_path / "publish"
    folder.mkdir()
    (folder / "huge.txt").write_bytes(b"x" * 4096)
    watch = DocumentWatch(folders=[str(folder)], settle_s=0.2, max_file_bytes=1024)
    (observation,) = asyncio.run(_collect(DocumentsSource(watch, None), 1, 10))
    assert observation.error and "过大" in observation.error and observation.size > 1024
