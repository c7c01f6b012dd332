"""Precision and recall of the judgment-document checker, per rule, on the labelled corpus.

    .venv/bin/python bench/documents_eval.py [--per-kind 40] [--seed 2026] [--profile spc-2024]

The corpus (tests/agent/detectors/documents/corpus.py) is synthetic: realistic
judgments of five case types with personal data injected at known places and
clean twins, in .txt (GB18030), .docx, .pdf and .ofd. Findings are matched to
labels on the text they cover. A synthetic corpus written by the same people who wrote the rules
measures the pipeline and the formats, not independent accuracy: see
docs/documents.md for what it cannot tell.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.policy.loader import load_policy_dir
from tests.agent.detectors.documents.corpus import (
    FORMATS,
    STRUCTURED,
    Generator,
    clean_twin,
    evaluate,
    render,
)

NAMES = {"documents.party-name", "documents.protected-person-name", "documents.address"}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--profile", default="spc-2024")
    parser.add_argument("--formats", default=",".join(FORMATS))
    args = parser.parse_args()
    policy = load_policy_dir(Path(__file__).resolve().parents[1] / "policies").section("documents")
    documents = Generator(args.seed).corpus(args.per_kind)
    documents += [clean_twin(d) for d in documents]
    print(
        f"corpus: {len(documents)} documents ({len(documents) // 2} with injected data, "
        f"{len(documents) // 2} clean twins), profile {args.profile}"
    )
    with tempfile.TemporaryDirectory(prefix="courtguard-eval-") as tmp:
        for suffix in args.formats.split(","):
            started = time.perf_counter()
            paths = [render(d, Path(tmp), suffix) for d in documents]
            result = evaluate(documents, paths, policy, args.profile)
            elapsed = time.perf_counter() - started
            print(
                f"\n{suffix}: {result.documents} documents, {len(result.errors)} errors, "
                f"{elapsed:.1f} s (render + extract + scan)"
            )
            print(
                f"  {'rule':40s} {'tp':>5s} {'fn':>4s} {'fp':>4s} {'precision':>9s} {'recall':>7s}"
            )
            for rule_id, score in sorted(result.rules.items()):
                print(
                    f"  {rule_id:40s} {score.tp:5d} {score.fn:4d} {score.fp:4d} "
                    f"{score.precision:9.3f} {score.recall:7.3f}"
                )
            print(
                f"  structured identifiers recall {result.recall_of(STRUCTURED):.3f} (target 0.99)"
            )
            print(f"  names and addresses recall    {result.recall_of(NAMES):.3f} (target 0.95)")
            print(
                f"  do-not-publish recall         {result.block_found}/{result.block_expected} "
                "(target 0.98)"
            )
            print(
                f"  false findings in clean twins {result.clean_false_findings} in "
                f"{result.clean_documents} (target ≤ 1 per 20)"
            )
            for name, rule_id, value in result.misses[:10]:
                print(f"  missed {rule_id} in {name}: {len(value)} characters")
            for name, rule_id, _text in result.false[:10]:
                print(f"  false {rule_id} in {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
