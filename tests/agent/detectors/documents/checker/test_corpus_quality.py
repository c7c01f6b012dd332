"""The labelled synthetic corpus in every format meets the issue's targets.

Recall ≥ 0.99 on structured identifiers, ≥ 0.95 on names and addresses,
≥ 0.98 on do-not-publish documents, and at most one false finding per 20
clean twins. bench/documents_eval.py runs the same evaluation on a larger
corpus and prints precision and recall per rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.detectors.documents.policy import DocumentsPolicy
from tests.agent.detectors.documents.corpus import (
    FORMATS,
    STRUCTURED,
    Generator,
    clean_twin,
    evaluate,
    render,
)

NAMES_AND_ADDRESSES = {
    "documents.party-name",
    "documents.protected-person-name",
    "documents.address",
}


@pytest.mark.parametrize("suffix", FORMATS)
def test_corpus_meets_targets(
    suffix: str, tmp_path: Path, documents_policy: DocumentsPolicy
) -> None:
    documents = Generator(seed=11).corpus(per_kind=3)
    documents += [clean_twin(d) for d in documents]
    paths = [render(d, tmp_path, suffix) for d in documents]
    result = evaluate(documents, paths, documents_policy, "spc-2024")
    assert not result.errors
    assert result.recall_of(STRUCTURED) >= 0.99, result.misses
    assert result.recall_of(NAMES_AND_ADDRESSES) >= 0.95, result.misses
    assert result.block_found / result.block_expected >= 0.98
    assert result.clean_false_findings * 20 <= result.clean_documents, result.false
