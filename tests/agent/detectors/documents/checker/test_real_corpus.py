"""The real-style corpus (realcorpus/): the same findings in every layout, and the issue's targets.

A document copied from the publication site has no line breaks, one extracted
from a PDF has one every 38 characters; both must give what the line-broken
original gives. On the single-line layout under spc-2024: party-name recall
≥ 0.97, no judge, clerk, prosecutor or lawyer flagged, ≤ 0.05 false findings
per clean document, and the minor-defendant ground exactly where a defendant
was under eighteen.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from agent.detectors.documents.policy import DocumentsPolicy
from tests.agent.detectors.documents.real_corpus import (
    LayoutScore,
    RealDocument,
    finding_key,
    load,
    scan_layout,
    score_document,
)

DOCUMENTS = load()


def test_the_corpus_is_large_and_varied() -> None:
    assert len(DOCUMENTS) >= 30
    kinds = Counter(d.kind.split("-")[0] for d in DOCUMENTS)
    assert {"criminal", "civil", "administrative", "execution"} <= set(kinds)
    assert sum(d.minor == "defendant" for d in DOCUMENTS) >= 3
    assert sum(d.minor in ("victim", "witness", "party") for d in DOCUMENTS) >= 3
    # Every labelled name and keep-list name occurs in its document.
    for document in DOCUMENTS:
        text = document.text("single")
        assert all(name in text for name in document.names), document.name
        assert all(name in text for name in document.keep), document.name


def _keys(document: RealDocument, layout: str, policy: DocumentsPolicy, tmp: Path) -> Counter:
    parts, findings = scan_layout(document, layout, policy, "spc-2024", tmp)
    return Counter(finding_key(parts, f) for f in findings)


@pytest.mark.parametrize("document", DOCUMENTS, ids=[d.name for d in DOCUMENTS])
def test_single_line_and_pdf_wrapped_give_the_line_broken_findings(
    document: RealDocument, documents_policy: DocumentsPolicy, tmp_path: Path
) -> None:
    lines = _keys(document, "lines", documents_policy, tmp_path)
    assert lines, "a document with names must have findings"
    assert _keys(document, "single", documents_policy, tmp_path) == lines
    assert _keys(document, "pdf", documents_policy, tmp_path) == lines


@pytest.fixture(scope="module")
def single_line_score(
    documents_policy: DocumentsPolicy, tmp_path_factory: pytest.TempPathFactory
) -> LayoutScore:
    tmp = tmp_path_factory.mktemp("real")
    score = LayoutScore()
    for document in DOCUMENTS:
        for variant in (document, document.twin()):
            parts, findings = scan_layout(variant, "single", documents_policy, "spc-2024", tmp)
            score_document(score, variant, parts, findings, "spc-2024")
    return score


def test_single_line_party_recall(single_line_score: LayoutScore) -> None:
    assert single_line_score.recall("party") >= 0.97, single_line_score.misses


def test_single_line_keep_list_and_false_findings(single_line_score: LayoutScore) -> None:
    assert single_line_score.keep_violations == 0, single_line_score.false
    assert single_line_score.clean_documents == len(DOCUMENTS)
    assert single_line_score.false_per_clean_document <= 0.05, single_line_score.false
    assert single_line_score.unlabelled_name_findings == 0, single_line_score.false


def test_minor_defendant_only_where_a_defendant_is_a_minor(single_line_score: LayoutScore) -> None:
    assert single_line_score.minor_wrong == 0, single_line_score.false


def test_docx_with_party_table(documents_policy: DocumentsPolicy, tmp_path: Path) -> None:
    """Party clauses in a table cell, read through the real .docx extractor."""
    score = LayoutScore()
    for document in DOCUMENTS[::4]:
        parts, findings = scan_layout(document, "docx", documents_policy, "spc-2024", tmp_path)
        score_document(score, document, parts, findings, "spc-2024")
    assert score.recall("party") >= 0.97, score.misses
    assert score.keep_violations == 0, score.false
