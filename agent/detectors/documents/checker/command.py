"""``courtguard-agent scan``: check documents before publication, report in Chinese or JSON.

Exit status: 0 when every document is publishable, 1 when any is not, 2 when
any could not be checked (or on a usage error), so a publishing workflow can
gate on it.

Without ``--json`` each document is reported for a person: its verdict, then
its findings grouped by rule with the rule's reason and legal basis said once
per group, each finding at its line and column (and paragraph for .docx), the
text as it stands in the document (so it can be found with the editor's
search) and what replaces it, and a one-line summary. ``--json`` prints one
object per document with masked excerpts only (the machine contract; see
docs/documents.md).

Start-up is kept short because a clerk checks one file at a time: only the
``documents`` policy file is read (not the whole directory through the
policy registry, which imports every detector), and workers are forked from
this process where that is safe, so they do not import the checker again.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Final, TextIO

from agent.detectors.documents.checker.extract import SUPPORTED_SUFFIXES
from agent.detectors.documents.checker.scanner import ACTION_LABELS, VERDICT_LABELS
from agent.errors import ConfigError, PolicyError

if TYPE_CHECKING:
    from agent.detectors.documents.policy import DocumentsPolicy

EXIT_PUBLISHABLE: Final = 0
EXIT_NOT_PUBLISHABLE: Final = 1
EXIT_ERROR: Final = 2
#: Same bound as the policy loader's: a policy file is text a person wrote.
MAX_POLICY_FILE_BYTES: Final = 4 * 1024 * 1024
#: What a finding without a replacement asks for instead.
NO_REPLACEMENT: Final = {"block": "不得公开，须整体处理", "review": "需人工决定"}
FIXED_PART_LABELS: Final = {
    "body": "正文",
    "footnotes": "脚注",
    "endnotes": "尾注",
    "comments": "批注",
    "deleted": "修订中删除的文字",
    "properties": "文档属性",
    "filename": "文件名",
}


def part_label(part: str) -> str:
    """A part's name as a clerk knows it: 正文, 页眉1, 第3页, 批注..."""
    if part in FIXED_PART_LABELS:
        return FIXED_PART_LABELS[part]
    kind, _, number = part.partition(":")
    if kind == "page":
        return f"第{number}页"
    if kind == "header":
        return f"页眉{number}"
    if kind == "footer":
        return f"页脚{number}"
    if kind == "deleted":
        return f"{part_label(number)}修订中删除的文字"
    return part


def read_documents_policy(policy_dir: Path) -> DocumentsPolicy:
    """The ``documents`` policy of ``policy_dir``, reading no other policy file.

    ``documents.yaml`` is read first; a directory that keeps the section under
    another name is searched for the one file of kind ``documents``.
    """
    import yaml
    from pydantic import ValidationError

    from agent.detectors.documents.policy import DocumentsPolicy

    if not policy_dir.is_dir():
        raise PolicyError(
            f"策略目录 {policy_dir} 不存在：请用 --policy-dir 指定，"
            "或在 agent.toml 中设置 policy_dir"
        )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    preferred = policy_dir / "documents.yaml"
    candidates = [preferred] if preferred.is_file() else []
    candidates += [p for p in sorted(policy_dir.glob("*.yaml")) if p != preferred]
    for path in candidates:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"{path}：无法读取（{exc.strerror}）") from exc
        if len(raw) > MAX_POLICY_FILE_BYTES:
            raise PolicyError(f"{path}：超过 {MAX_POLICY_FILE_BYTES} 字节，请拆分")
        try:
            data: Any = yaml.load(raw, Loader=loader)  # noqa: S506 (a safe loader)
        except yaml.YAMLError as exc:
            raise PolicyError(f"{path}：不是有效的 YAML：{exc}") from exc
        if not isinstance(data, dict) or data.get("kind") != "documents":
            continue
        try:
            return DocumentsPolicy.model_validate(data)
        except ValidationError as exc:
            problems = "\n".join(
                f"  {path.name}: {'.'.join(str(p) for p in e['loc']) or '(顶层)'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise PolicyError(f"{path}：documents 策略有误：\n{problems}") from exc
    raise PolicyError(f"策略目录 {policy_dir} 中没有 documents 策略（kind: documents）")


def load_documents_policy(policy_dir: Path | None, config: str | None) -> DocumentsPolicy:
    """``--policy-dir``, else agent.toml's ``policy_dir``, else the policies shipped with us."""
    if policy_dir is None:
        from agent.bundled_policies import bundled_policy_dir
        from agent.settings import load_settings

        configured = load_settings(config).policy_dir
        policy_dir = configured if configured.is_dir() else bundled_policy_dir()
        if policy_dir is None:
            raise ConfigError(
                f"策略目录 {configured} 不存在，安装包中也没有自带的策略：请用 --policy-dir 指定"
            )
    return read_documents_policy(policy_dir)


def scanned(path: PurePath) -> bool:
    """Whether a file met while walking a directory is a document ``scan`` reads.

    Word's lock files (``~$name.docx``) are skipped. Pure, so the rule is the
    same for Windows paths (``PureWindowsPath``) as for POSIX ones.
    """
    return path.suffix.lower() in SUPPORTED_SUFFIXES and not path.name.startswith("~$")


def collect(paths: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Files to scan (directories recursively, supported types only) and reports for bad paths."""
    files: list[str] = []
    problems: list[dict[str, Any]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files.extend(str(Path(root) / n) for n in sorted(names) if scanned(Path(n)))
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


def where(finding: dict[str, Any]) -> str:
    """``正文第3行第5列（第2段）``: where a person finds the text."""
    text = part_label(finding["part"])
    if finding.get("line") is not None:
        text += f"第{finding['line']}行第{finding['column']}列"
    if finding.get("paragraph"):
        text += f"（第{finding['paragraph']}段）"
    return text


def _one_line(text: str, limit: int = 60) -> str:
    """Text shown on one line: line breaks as ⏎, long spans cut."""
    shown = text.replace("\r", "").replace("\n", "⏎").replace("\t", " ")
    return shown if len(shown) <= limit else shown[:limit] + "…"


def change_text(finding: dict[str, Any]) -> str:
    """``张三 → 张某``; the masked excerpt stands in when the original is not at hand."""
    original = finding.get("original")
    shown = _one_line(original if original is not None else finding["excerpt"])
    replacement = finding.get("replacement")
    if replacement is not None:
        return f"“{shown}” → “{_one_line(replacement)}”"
    return f"“{shown}”（{NO_REPLACEMENT.get(finding['action'], '需人工决定')}）"


def document_summary(report: dict[str, Any]) -> str:
    """One Chinese line: the verdict and how many findings of each action."""
    if report["error"]:
        return f"小结：无法审查（{report['error']}）"
    findings = report["findings"]
    if not findings:
        return f"小结：{VERDICT_LABELS[report['verdict']]}，未发现问题。"
    actions = Counter(f["action"] for f in findings)
    counts = "，".join(
        f"{ACTION_LABELS[a]} {actions[a]} 处" for a in ACTION_LABELS if actions.get(a)
    )
    rules = len({f["rule_id"] for f in findings})
    return (
        f"小结：{VERDICT_LABELS[report['verdict']]}；共 {len(findings)} 处"
        f"（{counts}），涉及 {rules} 条规则。"
    )


def human_report(report: dict[str, Any], out: TextIO) -> None:
    print(f"文书：{report['path']}", file=out)
    if report["error"]:
        print(f"  无法审查：{report['error']}", file=out)
        return
    print(f"  结论：{VERDICT_LABELS[report['verdict']]}（规则集 {report['profile']}）", file=out)
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for finding in report["findings"]:
        key = (finding["rule_id"], finding["action"], finding["detail"])
        groups.setdefault(key, []).append(finding)
    for (rule_id, action, detail), findings in groups.items():
        print(f"  [{ACTION_LABELS[action]}] {detail}（{rule_id}）", file=out)
        print(f"    依据：{findings[0]['basis']}", file=out)
        for finding in findings:
            print(f"    {where(finding)}  {change_text(finding)}", file=out)
    print(f"  {document_summary(report)}", file=out)


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
    files: list[str],
    policy: DocumentsPolicy,
    profile: str | None,
    workers: int | None,
    with_text: bool = False,
) -> Iterator[dict[str, Any]]:
    from agent.detectors.documents.checker.worker import ScanPool

    if not files:
        return
    pool = ScanPool(policy, profile, workers, fork=True, with_text=with_text)
    yield from pool.scan(files)


def _public(report: dict[str, Any]) -> dict[str, Any]:
    """The JSON contract: masked excerpts only, never the original text."""
    return {
        **report,
        "findings": [
            {k: v for k, v in f.items() if k not in ("original", "replacement")}
            for f in report["findings"]
        ],
    }


def run_scan(args: Any) -> int:
    policy = load_documents_policy(Path(args.policy_dir) if args.policy_dir else None, args.config)
    files, reports = collect(args.paths)
    show_progress = sys.stderr.isatty() and len(files) > 1 and not args.json
    many = len(files) + len(reports) > 1
    for count, report in enumerate(
        scan_reports(files, policy, args.profile, args.jobs, with_text=not args.json), start=1
    ):
        reports.append(report)
        if show_progress:
            _progress(count, len(files))
    if show_progress:
        print(file=sys.stderr)
    reports.sort(key=lambda r: r["path"])
    if args.json:
        for report in reports:
            print(json.dumps(_public(report), ensure_ascii=False))
    else:
        for report in reports:
            human_report(report, sys.stdout)
        if many:
            summary(reports, sys.stdout)
    return exit_status(reports) if reports else EXIT_ERROR
