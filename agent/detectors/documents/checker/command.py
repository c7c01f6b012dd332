"""``courtguard-agent scan``: check documents before publication, report in Chinese or JSON.

Exit status: 0 when every document is publishable, 1 when any is not, 2 when
any could not be checked (or on a usage error), so a publishing workflow can
gate on it.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, TextIO

from agent.detectors.documents.checker.extract import SUPPORTED_SUFFIXES
from agent.detectors.documents.checker.scanner import ACTION_LABELS, VERDICT_LABELS
from agent.detectors.documents.policy import DocumentsPolicy
from agent.errors import ConfigError

EXIT_PUBLISHABLE: Final = 0
EXIT_NOT_PUBLISHABLE: Final = 1
EXIT_ERROR: Final = 2
#: Where the project's own policies live when the agent runs from a checkout.
BUNDLED_POLICY_DIR: Final = Path(__file__).resolve().parents[2] / "policies"


def load_documents_policy(policy_dir: Path | None, config: str | None) -> DocumentsPolicy:
    from agent.policy.loader import load_policy_dir

    if policy_dir is None:
        from agent.settings import load_settings

        configured = load_settings(config).policy_dir
        policy_dir = configured if configured.is_dir() else BUNDLED_POLICY_DIR
    section = load_policy_dir(policy_dir, required=("documents",)).section("documents")
    if not isinstance(section, DocumentsPolicy):
        raise ConfigError(f"{policy_dir}: no documents policy")
    return section


def collect(paths: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Files to scan (directories recursively, supported types only) and reports for bad paths."""
    files: list[str] = []
    problems: list[dict[str, Any]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files.extend(
                    str(Path(root) / n)
                    for n in sorted(names)
                    if Path(n).suffix.lower() in SUPPORTED_SUFFIXES and not n.startswith("~$")
                )
        elif path.is_file():
            files.append(str(path))
        else:
            problems.append(_problem(raw, "文件或目录不存在"))
    return files, problems


def _problem(path: str, error: str) -> dict[str, Any]:
    return {
        "path": path,
        "sha256": None,
        "size": 0,
        "verdict": None,
        "profile": None,
        "findings": [],
        "error": error,
    }


def exit_status(reports: list[dict[str, Any]]) -> int:
    if any(r["error"] for r in reports):
        return EXIT_ERROR
    if any(r["verdict"] != "publishable" for r in reports):
        return EXIT_NOT_PUBLISHABLE
    return EXIT_PUBLISHABLE


def human_report(report: dict[str, Any], out: TextIO) -> None:
    print(f"文书：{report['path']}", file=out)
    if report["error"]:
        print(f"  无法审查：{report['error']}", file=out)
        return
    print(f"  结论：{VERDICT_LABELS[report['verdict']]}（规则集 {report['profile']}）", file=out)
    for finding in report["findings"]:
        print(
            f"  [{ACTION_LABELS[finding['action']]}] {finding['part']} "
            f"{finding['start']}-{finding['end']} “{finding['excerpt']}” {finding['detail']}"
            f"（{finding['rule_id']}；依据：{finding['basis']}）",
            file=out,
        )


def summary(reports: list[dict[str, Any]], out: TextIO) -> None:
    verdicts = Counter(r["verdict"] or "error" for r in reports)
    labels = {**VERDICT_LABELS, "error": "无法审查"}
    print(
        f"共审查 {len(reports)} 份文书："
        + "，".join(
            f"{labels[v]} {verdicts[v]} 份" for v in (*VERDICT_LABELS, "error") if verdicts[v]
        ),
        file=out,
    )
    rules = Counter(f["rule_id"] for r in reports for f in r["findings"])
    if rules:
        print("按规则统计：", file=out)
        for rule_id, count in rules.most_common():
            print(f"  {rule_id}: {count} 处", file=out)
    withdraw = [r["path"] for r in reports if r["verdict"] == "do_not_publish"]
    if withdraw:
        print("不得公开（已公开的应撤回）：", file=out)
        for path in withdraw:
            print(f"  {path}", file=out)


def _progress(done: int, total: int) -> None:
    print(f"\r已审查 {done}/{total}", end="", file=sys.stderr, flush=True)


def scan_reports(
    files: list[str], policy: DocumentsPolicy, profile: str | None, workers: int | None
) -> Iterator[dict[str, Any]]:
    from agent.detectors.documents.checker.worker import ScanPool

    if not files:
        return
    yield from ScanPool(policy, profile, workers).scan(files)


def run_scan(args: Any) -> int:
    policy = load_documents_policy(Path(args.policy_dir) if args.policy_dir else None, args.config)
    files, reports = collect(args.paths)
    show_progress = sys.stderr.isatty() and len(files) > 1 and not args.json
    many = len(files) + len(reports) > 1
    for count, report in enumerate(scan_reports(files, policy, args.profile, args.jobs), start=1):
        reports.append(report)
        if show_progress:
            _progress(count, len(files))
    if show_progress:
        print(file=sys.stderr)
    reports.sort(key=lambda r: r["path"])
    if args.json:
        for report in reports:
            print(json.dumps(report, ensure_ascii=False))
    else:
        for report in reports:
            human_report(report, sys.stdout)
        if many:
            summary(reports, sys.stdout)
    return exit_status(reports) if reports else EXIT_ERROR
