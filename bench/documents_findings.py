"""Every finding of the document checker on its corpora, to prove an optimisation changes none.

    .venv/bin/python bench/documents_findings.py record FILE [--parts CACHE]
    .venv/bin/python bench/documents_findings.py compare FILE [--parts CACHE]

Scans the real-style corpus (every layout, each document and its clean twin,
both profiles), the synthetic corpus (``documents_eval.py``'s defaults: every
kind, every format, with clean twins) and ``documents.py``'s dense benchmark
inputs, and writes one line per document: its verdict and every finding's
rule, action, part, span, detail, replacement and a hash of the excerpt.
``compare`` scans again and prints the first documents whose lines differ;
exit status 1 when any does. The extracted parts are kept in ``CACHE``
(JSON) so that repeated comparisons time the checker, not the extractors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.detectors.documents.checker.context import Part
from agent.detectors.documents.checker.extract import ExtractionError, extract_file
from agent.detectors.documents.checker.scanner import scan_parts
from agent.policy.loader import load_policy_dir
from bench.documents import CHARS_PER_PAGE, judgment_lines
from tests.agent.detectors.documents.corpus import FORMATS, Generator, clean_twin, render
from tests.agent.detectors.documents.docfiles import DocxContent, write_docx
from tests.agent.detectors.documents.real_corpus import LAYOUTS, write_layout_docx
from tests.agent.detectors.documents.real_corpus import load as load_real

REPO = Path(__file__).resolve().parents[1]
TODAY = date(2026, 12, 1)
PROFILES = ("spc-2024", "spc-2016")
Corpus = list[tuple[str, list[Part]]]


def _real(home: Path) -> Corpus:
    corpus: Corpus = []
    for document in load_real():
        for variant in (document, document.twin()):
            for layout in LAYOUTS:
                label = f"real/{variant.name}/{layout}"
                if layout == "docx":
                    stem = "".join(c if c.isalnum() else "_" for c in variant.name)
                    path = write_layout_docx(variant, home / f"{stem}.docx")
                    parts = [p for p in extract_file(path).parts if p.name != "filename"]
                else:
                    parts = [Part("body", variant.text(layout))]
                corpus.append((label, parts))
    return corpus


def _synthetic(home: Path) -> Corpus:
    documents = Generator(2026).corpus(40)
    documents += [clean_twin(d) for d in documents]
    corpus: Corpus = []
    for suffix in FORMATS:
        for document in documents:
            path = render(document, home, suffix)
            try:
                parts = extract_file(path).parts
            except ExtractionError:
                continue
            corpus.append((f"synthetic/{document.name}{suffix}", parts))
    return corpus


def _dense(home: Path) -> Corpus:
    generator = Generator(seed=5)
    corpus: Corpus = []
    for index in range(20):
        text = "\n".join(judgment_lines(generator, 10_000))[:10_000]
        path = home / f"t{index}.txt"
        path.write_bytes(text.encode("gb18030"))
        corpus.append((f"dense/t{index}.txt", extract_file(path).parts))
    for index in range(5):
        lines = judgment_lines(generator, 20 * CHARS_PER_PAGE)
        path = write_docx(
            home / f"d{index}.docx",
            DocxContent(lines, table=[["证人", "王小明"]], header="（2024）京0105刑初1号"),
        )
        corpus.append((f"dense/d{index}.docx", extract_file(path).parts))
    return corpus


def build_corpus(cache: Path | None) -> Corpus:
    if cache is not None and cache.exists():
        stored = json.loads(cache.read_text(encoding="utf-8"))
        return [(label, [Part(name, text) for name, text in parts]) for label, parts in stored]
    with tempfile.TemporaryDirectory(prefix="courtguard-findings-") as tmp:
        home = Path(tmp)
        corpus = _real(home) + _synthetic(home) + _dense(home)
    if cache is not None:
        stored = [(label, [(p.name, p.text) for p in parts]) for label, parts in corpus]
        cache.write_text(json.dumps(stored, ensure_ascii=False), encoding="utf-8")
    return corpus


def findings_lines(corpus: Corpus) -> list[str]:
    policy = load_policy_dir(REPO / "policies").section("documents")
    lines = []
    for label, parts in corpus:
        for profile in PROFILES:
            result = scan_parts(parts, policy, profile, today=TODAY)
            items = [
                "|".join(
                    (
                        f.rule_id,
                        f.action,
                        f.part,
                        str(f.start),
                        str(f.end),
                        f.detail,
                        str(f.replacement),
                        hashlib.sha256(f.excerpt.encode()).hexdigest()[:12],
                    )
                )
                for f in result.findings
            ]
            lines.append(f"{label} {profile} {result.verdict} " + " ; ".join(items))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("record", "compare"))
    parser.add_argument("file", type=Path)
    parser.add_argument("--parts", type=Path, help="cache of the extracted parts (JSON)")
    args = parser.parse_args()
    lines = findings_lines(build_corpus(args.parts))
    findings = sum(line.count(" ; ") + 1 for line in lines if not line.endswith(" "))
    if args.action == "record":
        args.file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"recorded {len(lines)} scans, {findings} findings in {args.file}")
        return 0
    expected = args.file.read_text(encoding="utf-8").splitlines()
    if len(expected) != len(lines):
        print(f"different number of scans: {len(expected)} recorded, {len(lines)} now")
        return 1
    differing = [(old, new) for old, new in zip(expected, lines, strict=True) if old != new]
    for old, new in differing[:5]:
        print(f"- {old[:400]}\n+ {new[:400]}")
    print(f"{len(lines)} scans, {findings} findings, {len(differing)} differ")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
