"""One uploaded file checked for the clerk's page, in a worker process.

``check_task`` is the worker's entry point: the file's bytes, name, the
documents policy (as JSON), the profile and the keys of findings a clerk
marked as not applicable go in; a plain dict comes out, ready for the
template: the verdict and why, findings grouped by rule and by person, the
text of each part split into lines with the findings in place, and the
corrected copy's bytes. The dict holds the document's text (the clerk's own
upload, shown to that clerk only); ``history_row`` is what may be stored.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any, Final
from xml.sax.saxutils import escape

from agent.detectors.documents.checker.context import Part
from agent.detectors.documents.checker.extract import (
    DEFAULT_LIMITS,
    Extracted,
    ExtractionError,
    extract_bytes,
)
from agent.detectors.documents.checker.fix import apply_to_text, fix_docx, plan, text_encoding
from agent.detectors.documents.checker.scanner import (
    ACTION_LABELS,
    VERDICT_LABELS,
    DocFinding,
    ScanResult,
    scan_parts,
    verdict_of,
)
from agent.detectors.documents.checker.validators import mask
from agent.detectors.documents.checker.worker import WORKER_CPU_SECONDS, _cpu_budget
from agent.detectors.documents.policy import DocumentsPolicy

#: The verdicts as the page says them: the checker command's words.
VERDICT_WORDS: Final = VERDICT_LABELS
#: What each action means to a clerk, said once per group.
ACTION_MEANING: Final = {
    "block": "命中不得在互联网公布的情形，整篇文书不得公开。",
    "pseudonymize": "姓名或字号须隐去，以“某”代替；修正稿已替换。",
    "redact": "该信息须删除，以“×”代替；修正稿已替换。",
    "review": "需要人工判断是否公开，修正稿未改动。",
}
ACTION_ORDER: Final = ("block", "review", "pseudonymize", "redact")
#: A part longer than this shows only the lines that hold findings.
FULL_TEXT_CHARS: Final = 200_000
#: At most this many findings are listed and marked on the page (all are corrected).
MAX_SHOWN_FINDINGS: Final = 3000
#: Parts shown even without findings.
ALWAYS_SHOWN: Final = ("body",)
CORRECTABLE_IN_PLACE: Final = (".docx", ".txt")
COPY_ONLY: Final = (".pdf", ".ofd", ".doc", ".wps")


def finding_key(finding: DocFinding) -> str:
    """A finding's name across checks of the same file under the same policy."""
    return f"{finding.rule_id}:{finding.part}:{finding.start}:{finding.end}"[:200]


def part_label(name: str) -> str:
    if name.startswith("page:"):
        return f"第 {name.split(':', 1)[1]} 页"
    if name.startswith(("header:", "footer:")):
        kind, number = name.split(":", 1)
        return f"{'页眉' if kind == 'header' else '页脚'} {number}"
    return {"body": "正文", "filename": "文件名", "comments": "批注", "footnotes": "脚注",
            "endnotes": "尾注", "properties": "文档属性"}.get(name, name)


def safe_file_name(name: str, findings: Sequence[DocFinding]) -> str:
    """The file name with the names and numbers the scan found in it replaced (as events
    carry it), as it may be stored and shown."""
    hits = [f for f in findings if f.part == "filename"]
    for finding in sorted(hits, key=lambda f: f.start, reverse=True):
        original = name[finding.start:finding.end]
        new = finding.replacement if finding.replacement is not None else mask(original)
        name = name[:finding.start] + new + name[finding.end:]
    return name[:255]


def check_task(data: bytes, name: str, policy_json: dict[str, Any], profile: str | None,
               excluded: Sequence[str] = ()) -> dict[str, Any]:
    """Worker entry point: the page's whole view of one file (see the module docstring)."""
    _cpu_budget(WORKER_CPU_SECONDS)
    return check(data, name, _policy(policy_json), profile, frozenset(excluded))


_validated: dict[str, DocumentsPolicy] = {}


def _policy(policy_json: dict[str, Any]) -> DocumentsPolicy:
    """The policy model, validated once per policy text in this worker (about 10 ms each)."""
    import json

    key = hashlib.sha256(json.dumps(policy_json, sort_keys=True).encode()).hexdigest()
    policy = _validated.get(key)
    if policy is None:
        _validated.clear()  # only the current policy is ever needed
        policy = _validated[key] = DocumentsPolicy.model_validate(policy_json)
    return policy


def check(data: bytes, name: str, policy: DocumentsPolicy, profile: str | None,
          excluded: frozenset[str] = frozenset()) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    suffix = PurePosixPath(name).suffix.lower()
    outcome: dict[str, Any] = {"name": name, "sha256": digest, "size": len(data),
                               "suffix": suffix, "error": None}
    try:
        extracted = extract_bytes(data, name, DEFAULT_LIMITS)
    except ExtractionError as exc:
        return _failed(outcome, str(exc))
    except MemoryError:
        return _failed(outcome, "审查时内存超出上限，疑似恶意文件，未审查")
    except RecursionError:
        return _failed(outcome, "文件结构嵌套过深，疑似恶意文件，未审查")
    result = scan_parts(extracted.parts, policy, profile)
    texts = {part.name: part.text for part in extracted.parts}
    kept = [f for f in result.findings if finding_key(f) not in excluded]
    changes = plan(ScanResult(verdict_of(kept), tuple(kept), result.profile))
    change_of = {finding_key(c.finding): c for c in changes}
    findings = []
    for index, finding in enumerate(result.findings[:MAX_SHOWN_FINDINGS]):
        key = finding_key(finding)
        change = change_of.get(key)
        findings.append({
            "index": index, "key": key, "rule_id": finding.rule_id, "action": finding.action,
            "action_label": ACTION_LABELS.get(finding.action, finding.action),
            "part": finding.part, "part_label": part_label(finding.part),
            "start": finding.start, "end": finding.end,
            "original": texts.get(finding.part, "")[finding.start:finding.end][:200],
            "replacement": finding.replacement, "excerpt": finding.excerpt,
            "basis": finding.basis, "detail": finding.detail, "excluded": key in excluded,
            "applied": bool(change and change.applied),
            "note": change.reason if change and not change.applied else "",
        })
    unapplied = [c.finding for c in changes if not c.applied]
    safe_name = safe_file_name(name, result.findings)
    corrected, corrected_name, corrected_text = _corrected(data, safe_name, suffix, extracted,
                                                           changes)
    outcome.update({
        "safe_name": safe_name,
        "applied_counts": _counts([c.finding for c in changes if c.applied]),
        "profile": result.profile,
        "verdict": verdict_of(kept),
        "verdict_before": result.verdict,
        "verdict_after": verdict_of(unapplied),
        "counts": _counts(kept),
        "excluded_count": len(result.findings) - len(kept),
        "unlisted": max(0, len(result.findings) - MAX_SHOWN_FINDINGS),
        "findings": findings,
        "groups": _groups(findings),
        "parts": _parts(extracted.parts, findings),
        "corrected": corrected,
        "corrected_name": corrected_name,
        "corrected_text": corrected_text,
        "copy_only": suffix in COPY_ONLY,
    })
    outcome["why"] = _why(outcome, findings)
    return outcome


def _failed(outcome: dict[str, Any], error: str) -> dict[str, Any]:
    # Names in a file name are found from the document's text; without it, mask the name.
    path = PurePosixPath(outcome["name"])
    outcome.update({"error": error, "safe_name": f"{mask(path.stem)}{path.suffix}"[:255],
                    "verdict": None, "counts": {}, "findings": [], "groups": [], "parts": [],
                    "corrected": None, "corrected_name": None, "corrected_text": None,
                    "applied_counts": {}, "unlisted": 0,
                    "excluded_count": 0,
                    "why": [error]})
    return outcome


def _counts(findings: Sequence[DocFinding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.action] = counts.get(finding.action, 0) + 1
    return counts


def _why(outcome: dict[str, Any], findings: list[dict[str, Any]]) -> list[str]:
    live = [f for f in findings if not f["excluded"]]
    counts = outcome["counts"]
    reasons: list[str] = []
    blocking = list(dict.fromkeys(f["basis"] for f in live if f["action"] == "block"))
    for basis in blocking:
        reasons.append(f"不得公开：{basis}")
    applied = outcome["applied_counts"]
    fixed = [f"{ACTION_LABELS[a]} {applied[a]} 处" for a in ("pseudonymize", "redact")
             if applied.get(a)]
    if fixed:
        reasons.append(f"须{'、'.join(fixed)}，修正稿已替换")
    if any(f["part"] == "filename" for f in live):
        reasons.append("文件名含个人信息，下载的修正稿已改用隐名后的文件名")
    if counts.get("review"):
        rules = "、".join(dict.fromkeys(f["basis"] for f in live if f["action"] == "review"))
        reasons.append(f"{counts['review']} 处需人工判断（{rules}）")
    if not live:
        reasons.append("未发现须隐名、删除或不得公开的内容")
    if outcome["unlisted"]:
        unlisted = outcome["unlisted"]
        reasons.append(f"发现过多，页面只列出前 {MAX_SHOWN_FINDINGS} 处；其余 {unlisted} 处"
                       "也已计入结论并在修正稿中处理")
    if outcome["excluded_count"]:
        reasons.append(f"{outcome['excluded_count']} 处已由书记员标记为不适用，不计入结论")
    return reasons


def _groups(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """By rule (its reason said once), then by person or value within the rule."""
    by_rule: dict[str, dict[str, Any]] = {}
    for finding in findings:
        group = by_rule.setdefault(finding["rule_id"], {
            "rule_id": finding["rule_id"], "action": finding["action"],
            "action_label": finding["action_label"], "basis": finding["basis"],
            "meaning": ACTION_MEANING.get(finding["action"], ""), "subgroups": {}})
        # A person's pseudonym is one per person across the document; other values group
        # by their own text.
        who = finding["replacement"] if finding["action"] == "pseudonymize" \
            and finding["replacement"] else finding["original"]
        sub = group["subgroups"].setdefault(who, {
            "original": finding["original"], "replacement": finding["replacement"],
            "detail": finding["detail"], "indexes": [], "finding_keys": [], "originals": []})
        sub["indexes"].append(finding["index"])
        sub["finding_keys"].append(finding["key"])
        if finding["original"] not in sub["originals"]:
            sub["originals"].append(finding["original"])
    groups = []
    for group in by_rule.values():
        subgroups = []
        for sub in group.pop("subgroups").values():
            states = {findings[i]["excluded"] for i in sub["indexes"]}
            sub["excluded"] = states == {True}
            sub["partly_excluded"] = len(states) == 2
            subgroups.append(sub)
        group["subgroups"] = subgroups
        group["count"] = sum(len(s["indexes"]) for s in subgroups)
        groups.append(group)
    order = {action: n for n, action in enumerate(ACTION_ORDER)}
    groups.sort(key=lambda g: (order.get(g["action"], 9), g["rule_id"]))
    return groups


def _parts(parts: Sequence[Part], findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each part with findings (and the body): lines of (text, finding index or None)."""
    shown = []
    for part in parts:
        mine = sorted((f for f in findings if f["part"] == part.name),
                      key=lambda f: (f["start"], -f["end"]))
        if not mine and part.name not in ALWAYS_SHOWN:
            continue
        pieces: list[tuple[str, int | None]] = []
        at = 0
        for finding in mine:
            if finding["start"] < at or finding["end"] <= finding["start"]:
                continue  # overlapping or whole-document findings are listed, not marked
            pieces.append((part.text[at:finding["start"]], None))
            pieces.append((part.text[finding["start"]:finding["end"]], finding["index"]))
            at = finding["end"]
        pieces.append((part.text[at:], None))
        lines: list[list[tuple[str, int | None]]] = [[]]
        for text, index in pieces:
            for n, chunk in enumerate(text.split("\n")):
                if n:
                    lines.append([])
                if chunk:
                    lines[-1].append((chunk, index))
        truncated = len(part.text) > FULL_TEXT_CHARS
        if truncated:
            lines = [line for line in lines if any(index is not None for _, index in line)]
        shown.append({"name": part.name, "label": part_label(part.name), "lines": lines,
                      "truncated": truncated})
    return shown


def _corrected(data: bytes, name: str, suffix: str, extracted: Extracted,
               changes: Sequence[Any]) -> tuple[bytes, str, str | None]:
    """The corrected copy: .docx and .txt in their own format; a PDF, OFD or legacy Word
    file gets a new .docx of its corrected text (the text itself is the third value, for
    a .txt download), since its own layout cannot be edited in place."""
    stem = PurePosixPath(name).stem or "document"
    applied = [c for c in changes if c.applied]
    if suffix == ".docx":
        return fix_docx(data, extracted, changes), f"{stem}-修正稿.docx", None
    texts = []
    for part in extracted.parts:
        if part.name in ("filename", "properties"):
            continue
        mine = [c for c in applied if c.finding.part == part.name]
        texts.append(apply_to_text(part.text, mine))
    text = "\n\n".join(texts)
    if suffix == ".txt":
        return text.encode(text_encoding(data)), f"{stem}-修正稿.txt", None
    return text_docx(text), f"{stem}-修正稿.docx", text


def text_docx(text: str) -> bytes:
    """A plain .docx holding ``text``, one paragraph per line (for PDF and OFD copies)."""
    body = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{escape(line)}</w:t></w:r></w:p>'
        for line in text.split("\n"))
    document = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/'
                f'main"><w:body>{body}</w:body></w:document>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://'
            'schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default '
            'Extension="xml" ContentType="application/xml"/><Override PartName="/word/'
            'document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'wordprocessingml.document.main+xml"/></Types>'))
        archive.writestr("_rels/.rels", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http:'
            '//schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>'))
        archive.writestr("word/document.xml", document)
    return out.getvalue()


def history_row(outcome: dict[str, Any]) -> dict[str, Any]:
    """What the store keeps of a check: hash, pseudonymised name, verdict, counts; no text."""
    return {"sha256": outcome["sha256"], "file_name": outcome["safe_name"],
            "size": outcome["size"], "verdict": outcome["verdict"],
            "error": (outcome["error"] or None) and outcome["error"][:500],
            "findings": sum(outcome["counts"].values()), "counts": outcome["counts"]}
