"""Pure decision: an extracted document in, one finding per rule that fired out.

The document checker (``checker.scanner`` and the word lists and patterns it
loads) is imported at the first document, not with the registry: most
workstations never see one, and it is the agent's largest import.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from hashlib import sha256
from typing import TYPE_CHECKING, ClassVar, Final

from pydantic_core import to_json

from agent.detectors.documents.evidence import (
    DocumentFindingEvidence,
    DocumentOccurrence,
    DocumentUnreadableEvidence,
)
from agent.detectors.documents.observations import DocumentObservation
from agent.detectors.documents.policy import DocumentsPolicy
from agent.events import MAX_EVIDENCE_BYTES, Finding, Severity

if TYPE_CHECKING:
    from agent.detectors.documents.checker.scanner import DocFinding, ScanResult

MAX_OCCURRENCES: Final = 50
#: Evidence size to stay under, leaving room for the event's own fields.
EVIDENCE_BUDGET: Final = MAX_EVIDENCE_BYTES - 1024
FILENAME_PART: Final = "filename"


def masked_file_name(name: str, findings: tuple[DocFinding, ...]) -> str:
    """The file name with every finding in the ``filename`` part replaced (names → 某)."""
    spans = sorted(
        (f for f in findings if f.part == FILENAME_PART and f.end > f.start),
        key=lambda f: f.start,
        reverse=True,
    )
    for finding in spans:
        replacement = finding.replacement or "×" * (finding.end - finding.start)
        name = name[: finding.start] + replacement + name[finding.end :]
    return name


def _within_evidence_limit(evidence: DocumentFindingEvidence) -> DocumentFindingEvidence:
    """Drop trailing occurrences until the evidence fits an event (the total stays)."""
    occurrences = list(evidence.occurrences)
    while occurrences and len(to_json(evidence.model_dump(mode="json"))) > EVIDENCE_BUDGET:
        occurrences = occurrences[: len(occurrences) * 3 // 4]
        evidence = evidence.model_copy(update={"occurrences": occurrences})
    return evidence


class DocumentsDetector:
    name: ClassVar[str] = "documents"
    policy_section: ClassVar[str] = "documents"
    description: ClassVar[str] = (
        "Judgment documents in publication folders that the publication rules say must be "
        "withheld, pseudonymised or redacted."
    )

    def evaluate(
        self, observation: DocumentObservation, policy: DocumentsPolicy, now: datetime
    ) -> Iterator[Finding]:
        from agent.detectors.documents.checker.context import Part
        from agent.detectors.documents.checker.scanner import scan_parts
        from agent.detectors.documents.checker.validators import mask

        base = observation.path.rsplit("/", 1)[-1]
        digest = (
            observation.sha256
            or sha256("\x00".join(p.text for p in observation.parts).encode()).hexdigest()
        )
        if observation.error is not None:
            # Without the text nobody knows which names the file name carries: mask all of it.
            stem, dot, suffix = base.rpartition(".")
            evidence = DocumentUnreadableEvidence(
                file_name=(mask(stem) + dot + suffix if dot else mask(base))[:500],
                folder=observation.folder[:1000],
                sha256=observation.sha256,
                size=observation.size,
                error=observation.error,
            )
            yield Finding(
                kind="document.unreadable",
                severity=Severity.LOW,
                summary=f"文书无法审查：{evidence.file_name}：{observation.error}"[:500],
                evidence=evidence.model_dump(mode="json", exclude_none=True),
                time=now,
            )
            return
        parts = [Part(p.name, p.text) for p in observation.parts]
        if not any(p.name == FILENAME_PART for p in parts):
            parts.append(Part(FILENAME_PART, base))
        result = scan_parts(parts, policy, observation.profile, today=now.date())
        yield from self._findings(observation, policy, result, base, digest, now)

    def _findings(
        self,
        observation: DocumentObservation,
        policy: DocumentsPolicy,
        result: ScanResult,
        base: str,
        digest: str,
        now: datetime,
    ) -> Iterator[Finding]:
        from agent.detectors.documents.checker.scanner import ACTION_LABELS, VERDICT_LABELS

        file_name = masked_file_name(base, result.findings)[:500]
        grouped: dict[tuple[str, str], list[DocFinding]] = {}
        for finding in result.findings:
            grouped.setdefault((finding.rule_id, finding.action), []).append(finding)
        for (rule_id, action), findings in grouped.items():
            rule = policy.rule(rule_id)
            severity = rule.severity if rule is not None else Severity.MEDIUM
            if action == "review" and severity.rank > Severity.MEDIUM.rank:
                severity = Severity.MEDIUM
            evidence = DocumentFindingEvidence(
                file_name=file_name,
                folder=observation.folder[:1000],
                sha256=digest,
                size=observation.size,
                verdict=result.verdict,
                profile=result.profile,
                action=action,
                basis=findings[0].basis,
                occurrences=[
                    DocumentOccurrence(
                        part=f.part[:200],
                        start=f.start,
                        end=f.end,
                        excerpt=f.excerpt[:200],
                        detail=f.detail[:200],
                    )
                    for f in findings[:MAX_OCCURRENCES]
                ],
                occurrences_total=len(findings),
            )
            summary = (
                f"裁判文书《{file_name}》{VERDICT_LABELS[result.verdict]}："
                f"{findings[0].detail}（{ACTION_LABELS[action]}，共{len(findings)}处）"
            )
            evidence = _within_evidence_limit(evidence)
            yield Finding(
                kind=f"document.{action}",
                severity=severity,
                summary=summary[:500],
                rule_id=rule_id,
                evidence=evidence.model_dump(mode="json", exclude_none=True),
                time=now,
            )

    def finalize(self, policy: DocumentsPolicy, now: datetime) -> Iterator[Finding]:
        return iter(())
