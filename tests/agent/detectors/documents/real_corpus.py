"""The real-style judgment corpus: typed judgments, their labels, their layouts, their scores.

``realcorpus/*.txt`` holds judgments written the way Chinese courts publish
them (criminal first and second instance, minors, civil first and second
instance, family, administrative, execution, retrial), with invented but
realistic names, kept apart from the synthetic corpus (corpus.py) and from
the policy's own cases. Each file starts with its labels::

    # kind: criminal-first
    # names: 赛福强=party 洪丽娟=victim     (every occurrence must be found)
    # keep: 林晓东 孙雅琪                    (judges, clerks, prosecutors, lawyers: never flagged)
    # minor: defendant|victim|witness|party|none

then one paragraph per line. Layouts, as a clerk gets them:

- ``lines``: one paragraph per line, as typed;
- ``single``: no line breaks at all (copied from the publication site);
- ``pdf``: a line break every 38 characters, mid-sentence and mid-name
  (text extracted from a PDF);
- ``docx``: a real .docx with the party clauses in a table, read by the
  checker's extractor.

Each document has a clean twin: every labelled name replaced by its article 9
pseudonym (numbered where two would collide), which should give no finding
beyond the do-not-publish grounds.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from agent.detectors.documents.checker.context import Part
from agent.detectors.documents.checker.extract import extract_file
from agent.detectors.documents.checker.lexicon import PARTY_ROLES, REPRESENTATIVE_ROLES
from agent.detectors.documents.checker.names import pseudonym_base
from agent.detectors.documents.checker.scanner import DocFinding, scan_parts
from agent.detectors.documents.policy import DocumentsPolicy
from tests.agent.detectors.documents.docfiles import DocxContent, write_docx

HERE = Path(__file__).resolve().parent / "realcorpus"
LAYOUTS = ("lines", "single", "pdf", "docx")
TODAY = date(2026, 12, 1)
WRAP = 38
NAME_RULES = frozenset(
    {"documents.party-name", "documents.protected-person-name", "documents.hidden-name-leak"}
)
#: Rules about the whole document (do-not-publish grounds): not a false finding on a twin.
GROUND_RULES = frozenset(
    {
        "documents.minor-defendant",
        "documents.mediation",
        "documents.family-cause",
        "documents.family-related-cause",
        "documents.state-secret",
        "documents.non-public-hearing",
    }
)
#: Categories hidden under spc-2016 too (art. 8); parties only under spc-2024, except in
#: family and inheritance cases.
PROTECTED = frozenset({"victim", "witness", "representative", "minor"})
_ROLE_START = re.compile(
    "^(?:" + "|".join(sorted(PARTY_ROLES + REPRESENTATIVE_ROLES, key=len, reverse=True)) + ")"
)


@dataclass(frozen=True)
class RealDocument:
    name: str
    kind: str
    names: dict[str, str]
    keep: tuple[str, ...]
    minor: str
    lines: tuple[str, ...]
    clean: bool = False

    def expected(self, profile: str) -> dict[str, str]:
        if profile == "spc-2024" or self.kind == "civil-family":
            return dict(self.names)
        return {n: c for n, c in self.names.items() if c in PROTECTED}

    def text(self, layout: str) -> str:
        if layout == "lines":
            return "\n".join(self.lines) + "\n"
        single = "".join(self.lines)
        if layout == "single":
            return single
        if layout == "pdf":
            return "\n".join(single[i : i + WRAP] for i in range(0, len(single), WRAP)) + "\n"
        raise ValueError(layout)

    def twin(self) -> RealDocument:
        """Every labelled name replaced by its pseudonym: what a clerk should publish."""
        groups: dict[str, list[str]] = {}
        for name in self.names:
            groups.setdefault(pseudonym_base(name), []).append(name)
        pseudonym = {}
        for base, members in groups.items():
            for number, name in enumerate(members, 1):
                pseudonym[name] = base if len(members) == 1 else f"{base}{number}"
        pattern = re.compile("|".join(sorted(map(re.escape, self.names), key=len, reverse=True)))
        lines = tuple(pattern.sub(lambda m: pseudonym[m.group()], line) for line in self.lines)
        return replace(self, name=f"{self.name} (clean)", lines=lines, clean=True)


def load(directory: Path = HERE) -> list[RealDocument]:
    documents = []
    for path in sorted(directory.glob("*.txt")):
        labels: dict[str, str] = {}
        body: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                key, _, value = line[2:].partition(":")
                labels[key.strip()] = value.strip()
            elif line.strip():
                body.append(line)
        names = dict(item.split("=", 1) for item in labels.get("names", "").split())
        documents.append(
            RealDocument(
                name=path.stem,
                kind=labels["kind"],
                names=names,
                keep=tuple(labels.get("keep", "").split()),
                minor=labels.get("minor", "none"),
                lines=tuple(body),
            )
        )
    return documents


def write_layout_docx(document: RealDocument, path: Path) -> Path:
    """A .docx with every party clause in a two-column table (role | the rest)."""
    paragraphs: list[str] = []
    table: list[list[str]] = []
    for line in document.lines:
        role = _ROLE_START.match(line)
        if role and "出生" in line:
            table.append([role.group(), line[role.end() :].lstrip("：:")])
        else:
            paragraphs.append(line)
    return write_docx(path, DocxContent(paragraphs, table=table))


def scan_layout(
    document: RealDocument,
    layout: str,
    policy: DocumentsPolicy,
    profile: str,
    directory: Path,
) -> tuple[list[Part], list[DocFinding]]:
    if layout == "docx":
        stem = re.sub(r"\W", "_", document.name)
        path = write_layout_docx(document, directory / f"{stem}.docx")
        parts = [p for p in extract_file(path).parts if p.name != "filename"]
    else:
        parts = [Part("body", document.text(layout))]
    return parts, list(scan_parts(parts, policy, profile, today=TODAY).findings)


def _occurrences(text: str, needle: str) -> Iterable[tuple[int, int]]:
    """Where ``needle`` stands in ``text``, also across a line break (PDF hard wraps)."""
    pattern = "\n?".join(re.escape(c) for c in needle)
    return (m.span() for m in re.finditer(pattern, text))


def finding_key(parts: Sequence[Part], finding: DocFinding) -> tuple[str, str]:
    """A finding as (rule, the text it covers without line breaks): the same in every layout."""
    text = next(p.text for p in parts if p.name == finding.part)
    return finding.rule_id, re.sub(r"\s", "", text[finding.start : finding.end])


@dataclass
class LayoutScore:
    found: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)
    keep_violations: int = 0
    unlabelled_name_findings: int = 0
    clean_documents: int = 0
    clean_false_findings: int = 0
    minor_right: int = 0
    minor_wrong: int = 0
    misses: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)

    def recall(self, category: str | None = None) -> float:
        keys = [category] if category else list(self.found | self.missed)
        found = sum(self.found[k] for k in keys)
        total = found + sum(self.missed[k] for k in keys)
        return found / total if total else 1.0

    @property
    def false_per_clean_document(self) -> float:
        return self.clean_false_findings / self.clean_documents if self.clean_documents else 0.0


def score_document(
    score: LayoutScore,
    document: RealDocument,
    parts: Sequence[Part],
    findings: Sequence[DocFinding],
    profile: str,
) -> None:
    """Add one scanned document (or clean twin) to ``score``."""
    by_part: dict[str, list[DocFinding]] = {}
    for finding in findings:
        by_part.setdefault(finding.part, []).append(finding)
    for part in parts:
        part_findings = by_part.get(part.name, [])
        for kept in document.keep:
            for start, end in _occurrences(part.text, kept):
                if any(
                    f.start < end and start < f.end and f.rule_id not in GROUND_RULES
                    for f in part_findings
                ):
                    score.keep_violations += 1
                    score.false.append(f"{document.name}: keep-list name {kept} flagged")
        if document.clean:
            continue
        covered: list[tuple[int, int]] = []
        for name, category in document.expected(profile).items():
            for start, end in _occurrences(part.text, name):
                covered.append((start, end))
                hit = any(
                    f.rule_id in NAME_RULES and f.start <= start and f.end >= end
                    for f in part_findings
                )
                if hit:
                    score.found[category] += 1
                else:
                    score.missed[category] += 1
                    score.misses.append(f"{document.name} [{part.name}]: {name} ({category})")
        for f in part_findings:
            if f.rule_id in NAME_RULES and not any(
                f.start < end and start < f.end for start, end in covered
            ):
                score.unlabelled_name_findings += 1
                score.false.append(
                    f"{document.name}: unlabelled {f.rule_id} "
                    f"{part.text[f.start : f.end]!r}"  # test output only, never logged
                )
    if document.clean:
        score.clean_documents += 1
        extra = [f for f in findings if f.rule_id not in GROUND_RULES]
        score.clean_false_findings += len(extra)
        for f in extra:
            text = next(p.text for p in parts if p.name == f.part)
            score.false.append(f"{document.name}: {f.rule_id} {text[f.start : f.end]!r}")
    blocked = any(f.rule_id == "documents.minor-defendant" for f in findings)
    if blocked == (document.minor == "defendant"):
        score.minor_right += 1
    else:
        score.minor_wrong += 1
        score.false.append(f"{document.name}: minor-defendant {'fired' if blocked else 'missed'}")


def evaluate(
    documents: Sequence[RealDocument],
    policy: DocumentsPolicy,
    profile: str,
    layouts: Sequence[str],
    directory: Path,
) -> dict[str, LayoutScore]:
    scores = {layout: LayoutScore() for layout in layouts}
    for document in documents:
        for variant in (document, document.twin()):
            for layout in layouts:
                parts, findings = scan_layout(variant, layout, policy, profile, directory)
                score_document(scores[layout], variant, parts, findings, profile)
    return scores
