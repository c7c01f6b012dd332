"""Recall and false findings of the judgment-document checker on its two labelled corpora.

    .venv/bin/python bench/documents_eval.py [--corpus real|synthetic|both] [--profile spc-2024]
        [--per-kind 40] [--seed 2026]

The real-style corpus (tests/agent/detectors/documents/realcorpus/, loaded by
real_corpus.py) is judgments typed the way courts publish them, labelled by
hand (party names by category, keep-list officers, minors), in four layouts:
line-broken, single-line (copied from the publication site), PDF-extracted
with a line break every 38 characters, and .docx with the parties in a table.
It prints, per layout: name recall per category, keep-list violations, name
findings on no labelled name, false findings per clean twin (names replaced by
their pseudonyms) and minor-defendant right/wrong; the single-line layout is
the scored one (targets: party recall ≥ 0.97, 0 keep-list violations, ≤ 0.05
false findings per clean document). Files named h*.txt were written after the
rules and scored before any change for them: they are printed on their own.

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
from tests.agent.detectors.documents.real_corpus import LAYOUTS, LayoutScore
from tests.agent.detectors.documents.real_corpus import evaluate as evaluate_real
from tests.agent.detectors.documents.real_corpus import load as load_real

NAMES = {"documents.party-name", "documents.protected-person-name", "documents.address"}


CATEGORIES = ("party", "victim", "witness", "representative", "minor")


def _print_real(label: str, scores: dict[str, LayoutScore]) -> None:
    print(f"\n{label}")
    print(
        f"  {'layout':8s} {'recall':>6s} "
        + " ".join(f"{c[:6]:>6s}" for c in CATEGORIES)
        + f" {'keep':>5s} {'stray':>5s} {'false/clean':>11s} {'minor ok/wrong':>14s}"
    )
    for layout, score in scores.items():
        per_category = " ".join(
            f"{score.recall(c):6.3f}" if score.found[c] + score.missed[c] else f"{'-':>6s}"
            for c in CATEGORIES
        )
        scored = "  <- scored" if layout == "single" else ""
        print(
            f"  {layout:8s} {score.recall():6.3f} {per_category} {score.keep_violations:5d} "
            f"{score.unlabelled_name_findings:5d} {score.false_per_clean_document:11.3f} "
            f"{score.minor_right:>7d}/{score.minor_wrong}{scored}"
        )
    single = scores.get("single")
    for line in (single.misses[:12] + single.false[:12]) if single else []:
        print(f"    {line}")


def real(policy: object, profile: str, layouts: list[str]) -> None:
    documents = load_real()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="courtguard-real-") as tmp:
        for label, subset in (
            ("written with the rules", [d for d in documents if not d.name.startswith("h")]),
            ("written after the rules (h*)", [d for d in documents if d.name.startswith("h")]),
            ("all", documents),
        ):
            scores = evaluate_real(subset, policy, profile, layouts, Path(tmp))  # type: ignore[arg-type]  # the documents section
            _print_real(
                f"real-style corpus, {label}: {len(subset)} documents + {len(subset)} clean "
                f"twins, profile {profile}",
                scores,
            )
    print(f"  ({time.perf_counter() - started:.1f} s)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--corpus", choices=("real", "synthetic", "both"), default="both")
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--profile", default="spc-2024")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--layouts", default=",".join(LAYOUTS))
    args = parser.parse_args()
    policy = load_policy_dir(Path(__file__).resolve().parents[1] / "policies").section("documents")
    if args.corpus in ("real", "both"):
        real(policy, args.profile, args.layouts.split(","))
    if args.corpus == "real":
        return 0
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
