"""The pure detector: events from a document's parts, with no raw personal data."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from agent.detectors.documents.detector import DocumentsDetector
from agent.detectors.documents.observations import DocumentObservation
from agent.detectors.documents.policy import DocumentsPolicy
from agent.events import Event, uuid7
from agent.registry import EVIDENCE_MODELS
from tests.agent.detectors.documents.conftest import NAMED


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
    Event(
        id=uuid7(),
        seq=1,
        time=datetime.now(UTC),
        agent_id=uuid7(),
        host="h",
        kind=finding.kind,
        severity=finding.severity,
        summary=finding.summary,
        evidence=finding.evidence,
    )
