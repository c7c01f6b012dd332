"""``courtguard-agent scan --fix PATH -o OUT``: a corrected copy and a list of every change.

Names become their article 9 pseudonyms (one per person across the whole
document, numbered where two would collide) and identifiers are replaced with
×. Only ``pseudonymize`` and ``redact`` findings are applied; ``review`` and
``block`` findings need a person and are listed as not applied, as is a file
name that carries personal data (OUT is named by the caller). The copy is
scanned again and the exit status is that of the copy: 0 publishable, 1 not,
2 error. The original is only ever read.

For .docx the changes go into the XML runs the text came from (a change that
spans runs is written into the first and the rest emptied); every other zip
entry is copied byte for byte. For .txt the copy keeps the original encoding.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import escape

from agent.detectors.documents.checker import messages
from agent.detectors.documents.checker.command import (
    EXIT_ERROR,
    EXIT_NOT_PUBLISHABLE,
    EXIT_PUBLISHABLE,
    action_word,
    change_text,
    load_documents_policy,
    part_label,
    verdict_word,
    where,
)
from agent.detectors.documents.checker.extract import (
    DEFAULT_LIMITS,
    Extracted,
    ExtractionError,
    Segment,
    extract_bytes,
)
from agent.detectors.documents.checker.scanner import (
    DocFinding,
    ScanResult,
    scan_parts,
)
from agent.detectors.documents.checker.worker import position
from agent.detectors.documents.policy import DocumentsPolicy
from agent.errors import ConfigError
from agent.messages import _

APPLIED_ACTIONS: Final = frozenset({"pseudonymize", "redact"})
FIXABLE_SUFFIXES: Final = (".txt", ".docx")
#: Why a finding is left as it stands, in the words the console and ``--json`` carry
#: (Chinese whatever the locale); the command line says it in its own language
#: (``messages.UNCHANGED``, by the same key).
NOT_APPLIED: Final = {
    "block": "不得公开，须整体处理",
    "review": "需人工决定",
    "filename": "文件名含个人信息，请另行命名输出文件",
    "overlap": "与其他修改重叠，已按前一处处理",
}


@dataclass(frozen=True)
class Change:
    finding: DocFinding
    applied: bool
    reason: str = ""
    #: The key of ``reason`` in ``NOT_APPLIED`` (``""`` when applied).
    why: str = ""
    #: The text the finding covers as it stands in the original, for the person reading the
    #: change list (``张三 → 张某``); never in ``--json``, which carries the masked excerpt.
    original: str = ""
    #: Where it is, as a person finds it: ``正文第3行第5列（第2段）``.
    location: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            **self.finding.as_json(),
            "replacement": self.finding.replacement if self.applied else None,
            "applied": self.applied,
            "reason": self.reason,
        }


def plan(result: ScanResult) -> list[Change]:
    """Which findings are applied: fixable actions, first of any overlapping spans."""
    changes: list[Change] = []
    last_end: dict[str, int] = {}
    for finding in sorted(result.findings, key=lambda f: (f.part, f.start, -f.end)):
        if finding.action not in APPLIED_ACTIONS or finding.replacement is None:
            why = "block" if finding.action == "block" else "review"
            changes.append(Change(finding, False, NOT_APPLIED[why], why=why))
        elif finding.part == "filename":
            changes.append(Change(finding, False, NOT_APPLIED["filename"], why="filename"))
        elif finding.start < last_end.get(finding.part, -1):
            changes.append(Change(finding, False, NOT_APPLIED["overlap"], why="overlap"))
        else:
            last_end[finding.part] = finding.end
            changes.append(Change(finding, True))
    return changes


def apply_to_text(text: str, changes: Sequence[Change]) -> str:
    for change in sorted(changes, key=lambda c: c.finding.start, reverse=True):
        f = change.finding
        text = text[: f.start] + (f.replacement or "") + text[f.end :]
    return text


def _segment_edits(
    part_text: str, segments: list[Segment], changes: Sequence[Change]
) -> dict[Segment, str]:
    """New unescaped text for every run a change touches."""
    edits: dict[Segment, list[tuple[int, int, str]]] = {}
    for change in changes:
        f = change.finding
        first = True
        for segment in segments:
            if segment.text_end <= f.start or segment.text_start >= f.end:
                continue
            local_start = max(f.start, segment.text_start) - segment.text_start
            local_end = min(f.end, segment.text_end) - segment.text_start
            edits.setdefault(segment, []).append(
                (local_start, local_end, (f.replacement or "") if first else "")
            )
            first = False
    result: dict[Segment, str] = {}
    for segment, local in edits.items():
        text = part_text[segment.text_start : segment.text_end]
        for start, end, new in sorted(local, reverse=True):
            text = text[:start] + new + text[end:]
        result[segment] = text
    return result


def fix_docx(data: bytes, extracted: Extracted, changes: Sequence[Change]) -> bytes:
    by_part: dict[str, list[Change]] = {}
    for change in changes:
        if change.applied:
            by_part.setdefault(change.finding.part, []).append(change)
    texts = {p.name: p.text for p in extracted.parts}
    entry_edits: dict[str, list[tuple[Segment, str]]] = {}
    for part, part_changes in by_part.items():
        segments = extracted.segments.get(part)
        if segments is None:
            continue
        for segment, text in _segment_edits(texts[part], segments, part_changes).items():
            entry_edits.setdefault(segment.entry, []).append((segment, text))
    new_xml: dict[str, str] = {}
    for entry, edits in entry_edits.items():
        xml = extracted.xml[entry]
        for segment, text in sorted(edits, key=lambda e: e[0].xml_start, reverse=True):
            xml = xml[: segment.xml_start] + escape(text) + xml[segment.xml_end :]
        new_xml[entry] = xml
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename in new_xml:
                target.writestr(info, new_xml[info.filename].encode("utf-8"), zipfile.ZIP_DEFLATED)
            else:
                target.writestr(info, source.read(info), info.compress_type)
    return out.getvalue()


def text_encoding(data: bytes) -> str:
    """The encoding a corrected .txt keeps: the original's (a BOM, UTF-8, else GB18030)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def fix_bytes(
    data: bytes, name: str, policy: DocumentsPolicy, profile: str | None
) -> tuple[bytes, ScanResult, list[Change]]:
    """The corrected file's bytes, what the original scan found, and every change."""
    suffix = Path(name).suffix.lower()
    if suffix not in FIXABLE_SUFFIXES:
        raise ExtractionError(_(messages.FIX_UNSUPPORTED).format(
            supported=_(messages.LIST_SEPARATOR).join(FIXABLE_SUFFIXES), suffix=suffix))
    extracted = extract_bytes(data, name, DEFAULT_LIMITS)
    result = scan_parts(extracted.parts, policy, profile)
    changes = [_located(c, extracted) for c in plan(result)]
    if suffix == ".txt":
        encoding = text_encoding(data)
        applied = [c for c in changes if c.applied and c.finding.part == "body"]
        fixed = apply_to_text(extracted.parts[0].text, applied).encode(encoding)
    else:
        fixed = fix_docx(data, extracted, changes)
    return fixed, result, changes


def _located(change: Change, extracted: Extracted) -> Change:
    f = change.finding
    part = next((p for p in extracted.parts if p.name == f.part), None)
    if part is None:
        return change
    spot = position(part, extracted.paragraphs.get(part.name), f.start)
    return replace(
        change, original=part.text[f.start : f.end], location=where({"part": f.part, **spot})
    )


def _write_new(path: Path, data: bytes) -> None:
    """Write OUT atomically; never over the input."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".courtguard-fix-", dir=path.parent)
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def run_fix(args: Any) -> int:
    if len(args.paths) != 1 or not args.output:
        raise ConfigError(_(messages.FIX_USAGE))
    source, target = Path(args.paths[0]), Path(args.output)
    if not source.is_file():
        raise ConfigError(_(messages.FIX_NOT_A_FILE).format(path=source))
    if target.exists() and target.resolve() == source.resolve():
        raise ConfigError(_(messages.FIX_SAME_FILE))
    if target.suffix.lower() != source.suffix.lower():
        raise ConfigError(_(messages.FIX_SUFFIX).format(suffix=source.suffix))
    policy = load_documents_policy(Path(args.policy_dir) if args.policy_dir else None, args.config)
    data = source.read_bytes()
    try:
        fixed, before, changes = fix_bytes(data, source.name, policy, args.profile)
        after = scan_parts(extract_bytes(fixed, target.name).parts, policy, args.profile)
    except ExtractionError as exc:
        print(_(messages.FIX_FAILED).format(path=source, reason=exc), file=sys.stderr)
        return EXIT_ERROR
    _write_new(target, fixed)
    if args.json:
        print(
            json.dumps(
                {
                    "path": str(source),
                    "output": str(target),
                    "verdict_before": before.verdict,
                    "verdict_after": after.verdict,
                    "changes": [c.as_json() for c in changes],
                    "remaining": [f.as_json() for f in after.findings],
                },
                ensure_ascii=False,
            )
        )
    else:
        _human(source, target, before, after, changes)
    return EXIT_PUBLISHABLE if after.verdict == "publishable" else EXIT_NOT_PUBLISHABLE


def _human(
    source: Path, target: Path, before: ScanResult, after: ScanResult, changes: list[Change]
) -> None:
    applied = [c for c in changes if c.applied]
    print(_(messages.FIX_ORIGINAL).format(path=source, verdict=verdict_word(before.verdict)))
    print(_(messages.FIX_COPY).format(path=target, count=len(applied)))
    for change in changes:
        f = change.finding
        shown = {**f.as_json(), "original": change.original or None}
        spot = change.location or part_label(f.part)
        if change.applied:
            print(_(messages.FIX_APPLIED).format(
                action=action_word(f.action), where=spot, rule_id=f.rule_id,
                change=change_text({**shown, "replacement": f.replacement})))
        else:
            print(_(messages.FIX_NOT_APPLIED).format(
                action=action_word(f.action), reason=_(messages.UNCHANGED[change.why]),
                where=spot, change=change_text({**shown, "replacement": None}),
                detail=f.detail, rule_id=f.rule_id))
    print(_(messages.FIX_RECHECKED).format(verdict=verdict_word(after.verdict)))
    for f in after.findings:
        print(_(messages.FIX_REMAINING).format(
            action=action_word(f.action), where=part_label(f.part), excerpt=f.excerpt,
            detail=f.detail, rule_id=f.rule_id))
