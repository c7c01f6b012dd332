"""The judgment-document checker: text parts in, findings with rule, action and basis out.

A document is a list of ``Part`` (body, a header, the comments, the file
name...). Every part is normalised once (``normalize``) and every check in
``checks`` reads the normalised text; hits are mapped back to offsets in the
part's text as extracted, masked for display, filtered through the keep-list
(judges, clerks, case numbers, citations, lawyers) and resolved to one
finding per span. The verdict follows from the strongest action present.

This module is pure: no files, no clock beyond the ``today`` a caller passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

from agent.detectors.documents.checker.checks import CHECKS, prepare
from agent.detectors.documents.checker.context import Context, Hit, Part
from agent.detectors.documents.checker.names import assign_pseudonyms, keep_role_names
from agent.detectors.documents.checker.normalize import normalize
from agent.detectors.documents.checker.validators import mask
from agent.detectors.documents.policy import DocumentMatch, DocumentsPolicy
from agent.policy.models import Rule

Verdict = Literal["publishable", "needs_redaction", "do_not_publish", "needs_review"]
VERDICT_LABELS: Final = {
    "publishable": "可以公开",
    "needs_redaction": "需处理后公开",
    "do_not_publish": "不得公开",
    "needs_review": "需人工审查",
}
ACTION_LABELS: Final = {
    "block": "不公开",
    "redact": "删除",
    "pseudonymize": "隐名",
    "review": "人工审查",
}


@dataclass(frozen=True)
class DocFinding:
    rule_id: str
    action: str
    part: str
    start: int
    end: int
    excerpt: str
    basis: str
    detail: str
    replacement: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "action": self.action,
            "part": self.part,
            "start": self.start,
            "end": self.end,
            "excerpt": self.excerpt,
            "basis": self.basis,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ScanResult:
    verdict: Verdict
    findings: tuple[DocFinding, ...]
    profile: str

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "profile": self.profile,
            "findings": [f.as_json() for f in self.findings],
        }


_CASE_NUMBER: Final = re.compile(
    r"\(\d{4}\)[\u4e00-\u9fff]{1,4}\d{0,6}[\u4e00-\u9fff]{1,8}\d+(?:之\d+)?号"
)
_CERTIFICATE: Final = re.compile(r"不动产|房权|[国集]用|产权")
_DOC_NUMBER: Final = re.compile(r"[\u4e00-\u9fff]{1,8}[〔\[(]\d{4}[〕\])]\d+号")
_STATUTE: Final = re.compile(
    r"《[^》\n]{1,60}》(?:第[零一二三四五六七八九十百千\d]+条(?:第[零一二三四五六七八九十\d]+[款项])*)*"
)
_COURT: Final = re.compile(r"人民(?:法院|检察院)")
#: What every document number ends with: searched first, since ``_DOC_NUMBER`` starts with a
#: run of Chinese characters and would be tried at every one of them.
_DOC_NUMBER_TAIL: Final = re.compile(r"[〔\[(]\d{4}[〕\])]\d+号")


def _document_numbers(text: str) -> Iterator[re.Match[str]]:
    """``_DOC_NUMBER.finditer(text)``, searched only in the eight characters before each
    number's bracket: the issuer's name is up to eight Chinese characters right before it."""
    last_end = 0
    for tail in _DOC_NUMBER_TAIL.finditer(text):
        found = _DOC_NUMBER.search(text, max(tail.start() - 8, last_end), tail.end())
        if found:
            last_end = found.end()
            yield found


#: The Chinese characters but 书 (U+4E66), 案 (U+6848) and 罪 (U+7F6A), up to 24, at the end.
_COURT_NAME: Final = re.compile(
    r"[\u4e00-\u4e65\u4e67-\u6847\u6849-\u7f69\u7f6b-\u9fff]{1,24}\Z"
)


def _court_name_start(text: str, end: int) -> int:
    """Where a court's name ending at ``end`` begins: up to 24 Chinese characters back, not
    past a title or caption (…敲诈勒索罪一审刑事判决书江西省…人民法院 in a single-line text)."""
    found = _COURT_NAME.search(text, max(0, end - 24), end)
    return found.start() if found else end


def _keep_spans(ctx: Context, extra: Sequence[str]) -> None:
    """The keep-list: case and document numbers, citations, courts, judges, lawyers, and
    the policy's own ``lists.keep`` (names and words a court publishes as they are).
    A kept person's name is kept wherever else it stands too."""
    terms = [str(term) for term in extra if str(term)]
    for index, text in enumerate(ctx.texts):
        spans = ctx.keep[index]
        for term in terms:
            start = text.find(term)
            while start >= 0:
                spans.append((start, start + len(term)))
                start = text.find(term, start + len(term))
        for found in (
            *_CASE_NUMBER.finditer(text),
            *_document_numbers(text),
            *_STATUTE.finditer(text),
        ):
            if not _CERTIFICATE.search(found.group()):
                spans.append(found.span())
        spans.extend((_court_name_start(text, m.start()), m.end()) for m in _COURT.finditer(text))
        for start, end, name in keep_role_names(text):
            spans.append((start, end))
            ctx.keep_names.add(name)
    for index, text in enumerate(ctx.texts):
        spans = ctx.keep[index]
        for name in ctx.keep_names:
            start = text.find(name)
            while start >= 0:
                spans.append((start, start + len(name)))
                start = text.find(name, start + len(name))
        mask = ctx.keep_mask[index]
        for start, end in spans:
            mask[start:end] = b"\x01" * (end - start)


def _active_rules(policy: DocumentsPolicy, profile: str) -> list[Rule[DocumentMatch]]:
    return [r for r in policy.rules if r.enabled and profile in r.match.profiles]


def scan_parts(
    parts: Sequence[Part],
    policy: DocumentsPolicy,
    profile: str | None = None,
    today: date | None = None,
) -> ScanResult:
    """Every active rule of ``policy`` over ``parts``; see the module docstring."""
    profile = profile or policy.profile
    norm = [normalize(p.text) for p in parts]
    ctx = Context(
        parts=parts,
        norm=norm,
        profile=profile,
        today=today or date.today(),
        keep=[[] for _ in parts],
        keep_mask=[bytearray(len(n.text)) for n in norm],
        claimed=[bytearray(len(n.text)) for n in norm],
    )
    _keep_spans(ctx, policy.lists.get("keep", []))
    prepare(ctx)
    hits: list[tuple[Rule[DocumentMatch], Hit]] = []
    taken: set[tuple[int, int, int]] = set()
    for rule in _active_rules(policy, profile):
        check = CHECKS[rule.match.check]
        for hit in check(ctx, rule.match):
            if not hit.whole_document and ctx.kept(hit.part, hit.start, hit.end):
                continue
            key = (hit.part, hit.start, hit.end)
            if not hit.whole_document:
                if key in taken:
                    continue
                taken.add(key)
            hits.append((rule, hit))
    # One pseudonym per person across every rule, numbered where two would collide (art. 9).
    names = list(dict.fromkeys(h.name for _, h in sorted(hits, key=_position) if h.name))
    pseudonyms = assign_pseudonyms(ctx, names)
    for _, hit in hits:
        if hit.name:
            hit.replacement = pseudonyms[hit.name]
    masked: dict[str, str] = {}  # a name found many times is masked once
    findings = [_finding(ctx, rule, hit, masked) for rule, hit in hits]
    findings.sort(key=lambda f: (f.part != parts[0].name if parts else 0, f.part, f.start, f.end))
    return ScanResult(verdict=verdict_of(findings), findings=tuple(findings), profile=profile)


def _position(item: tuple[Rule[DocumentMatch], Hit]) -> tuple[int, int]:
    return item[1].part, item[1].start


def _finding(
    ctx: Context, rule: Rule[DocumentMatch], hit: Hit, masked: dict[str, str]
) -> DocFinding:
    normalized = ctx.norm[hit.part]
    start, end = normalized.original_span(hit.start, hit.end)
    original = ctx.parts[hit.part].text[start:end]
    if hit.whole_document:
        excerpt = original[:40]
    else:
        excerpt = masked.get(original) or masked.setdefault(original, mask(original))
    return DocFinding(
        rule_id=rule.id,
        action=hit.action or rule.match.action,
        part=ctx.parts[hit.part].name,
        start=start,
        end=end,
        excerpt=excerpt,
        basis=rule.match.basis,
        detail=hit.detail,
        replacement=None if hit.whole_document else hit.replacement,
    )


def verdict_of(findings: Iterable[DocFinding]) -> Verdict:
    actions = {f.action for f in findings}
    if "block" in actions:
        return "do_not_publish"
    if actions & {"redact", "pseudonymize"}:
        return "needs_redaction"
    if "review" in actions:
        return "needs_review"
    return "publishable"


def scan_text(
    text: str,
    policy: DocumentsPolicy,
    profile: str | None = None,
    part: str = "body",
    today: date | None = None,
) -> ScanResult:
    return scan_parts([Part(part, text)], policy, profile, today)
