"""``courtguard-agent scan``: check documents before publication, report for a person or JSON.

Exit status: 0 when every document is publishable, 1 when any is not, 2 when
any could not be checked (or on a usage error), so a publishing workflow can
gate on it.

Without ``--json`` each document is reported for a person, in the locale's
language (``checker/messages.py``): its verdict, then
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

from agent.detectors.documents.checker import messages
from agent.detectors.documents.checker.extract import SUPPORTED_SUFFIXES
from agent.errors import ConfigError, PolicyError
from agent.messages import _

if TYPE_CHECKING:
    from agent.detectors.documents.policy import DocumentsPolicy

EXIT_PUBLISHABLE: Final = 0
EXIT_NOT_PUBLISHABLE: Final = 1
EXIT_ERROR: Final = 2
#: Same bound as the policy loader's: a policy file is text a person wrote.
MAX_POLICY_FILE_BYTES: Final = 4 * 1024 * 1024


def part_label(part: str) -> str:
    """A part's name as a clerk knows it: 正文, 页眉1, 第3页, 批注... (body, header 1...)."""
    if part in messages.PART:
        return _(messages.PART[part])
    kind, _sep, number = part.partition(":")
    if kind == "page":
        return _(messages.PAGE).format(number=number)
    if kind == "header":
        return _(messages.HEADER).format(number=number)
    if kind == "footer":
        return _(messages.FOOTER).format(number=number)
    if kind == "deleted":
        return _(messages.DELETED_IN).format(part=part_label(number))
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
        raise PolicyError(_(messages.NO_POLICY_DIR).format(path=policy_dir))
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    preferred = policy_dir / "documents.yaml"
    candidates = [preferred] if preferred.is_file() else []
    candidates += [p for p in sorted(policy_dir.glob("*.yaml")) if p != preferred]
    for path in candidates:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PolicyError(_(messages.POLICY_UNREADABLE).format(
                path=path, reason=exc.strerror)) from exc
        if len(raw) > MAX_POLICY_FILE_BYTES:
            raise PolicyError(_(messages.POLICY_TOO_LARGE).format(
                path=path, limit=MAX_POLICY_FILE_BYTES))
        try:
            data: Any = yaml.load(raw, Loader=loader)  # noqa: S506 (a safe loader)
        except yaml.YAMLError as exc:
            raise PolicyError(_(messages.POLICY_NOT_YAML).format(path=path, reason=exc)) from exc
        if not isinstance(data, dict) or data.get("kind") != "documents":
            continue
        try:
            return DocumentsPolicy.model_validate(data)
        except ValidationError as exc:
            problems = "\n".join(
                f"  {path.name}: "
                f"{'.'.join(str(p) for p in e['loc']) or _(messages.POLICY_TOP_LEVEL)}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise PolicyError(_(messages.POLICY_INVALID).format(
                path=path, problems=problems)) from exc
    raise PolicyError(_(messages.NO_DOCUMENTS_POLICY).format(path=policy_dir))


def load_documents_policy(policy_dir: Path | None, config: str | None) -> DocumentsPolicy:
    """``--policy-dir``, else agent.toml's ``policy_dir``, else the policies shipped with us."""
    if policy_dir is None:
        from agent.bundled_policies import bundled_policy_dir
        from agent.settings import load_settings

        configured = load_settings(config).policy_dir
        policy_dir = configured if configured.is_dir() else bundled_policy_dir()
        if policy_dir is None:
            raise ConfigError(_(messages.NO_POLICY_ANYWHERE).format(path=configured))
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
            problems.append(_problem(raw, _(messages.NOT_FOUND)))
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
    """``正文第3行第5列（第2段）`` (``body line 3 column 5 (paragraph 2)``): where to look."""
    text = part_label(finding["part"])
    if finding.get("line") is not None:
        text = _(messages.AT_LINE).format(part=text, line=finding["line"],
                                          column=finding["column"])
    if finding.get("paragraph"):
        text += _(messages.IN_PARAGRAPH).format(paragraph=finding["paragraph"])
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
        return messages.CHANGE.format(original=shown, replacement=_one_line(replacement))
    reason = messages.UNCHANGED.get(finding["action"], messages.UNCHANGED["review"])
    return _(messages.NO_CHANGE).format(original=shown, reason=_(reason))


def verdict_word(verdict: str) -> str:
    return _(messages.VERDICT[verdict])


def action_word(action: str) -> str:
    return _(messages.ACTION[action])


def document_summary(report: dict[str, Any]) -> str:
    """One line: the verdict and how many findings of each action."""
    if report["error"]:
        return _(messages.SUMMARY_ERROR).format(error=report["error"])
    findings = report["findings"]
    if not findings:
        return _(messages.SUMMARY_CLEAN).format(verdict=verdict_word(report["verdict"]))
    actions = Counter(f["action"] for f in findings)
    counts = _(messages.LIST_SEPARATOR).join(
        _(messages.ACTION_COUNT).format(action=action_word(a), count=actions[a])
        for a in messages.ACTION if actions.get(a)
    )
    return _(messages.SUMMARY).format(
        verdict=verdict_word(report["verdict"]), count=len(findings), counts=counts,
        rules=len({f["rule_id"] for f in findings}))


def human_report(report: dict[str, Any], out: TextIO) -> None:
    print(_(messages.DOCUMENT).format(path=report["path"]), file=out)
    if report["error"]:
        print(_(messages.CANNOT_CHECK).format(error=report["error"]), file=out)
        return
    print(_(messages.VERDICT_LINE).format(verdict=verdict_word(report["verdict"]),
                                          profile=report["profile"]), file=out)
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for finding in report["findings"]:
        key = (finding["rule_id"], finding["action"], finding["detail"])
        groups.setdefault(key, []).append(finding)
    for (rule_id, action, detail), findings in groups.items():
        print(_(messages.GROUP).format(action=action_word(action), detail=detail,
                                       rule_id=rule_id), file=out)
        print(_(messages.BASIS).format(basis=findings[0]["basis"]), file=out)
        for finding in findings:
            print(f"    {where(finding)}  {change_text(finding)}", file=out)
    print(f"  {document_summary(report)}", file=out)


def summary(reports: list[dict[str, Any]], out: TextIO) -> None:
    verdicts = Counter(r["verdict"] or "error" for r in reports)
    words = {**messages.VERDICT, "error": messages.UNCHECKED}
    counts = _(messages.LIST_SEPARATOR).join(
        _(messages.VERDICT_COUNT).format(verdict=_(words[v]), count=verdicts[v])
        for v in words if verdicts[v]
    )
    print(_(messages.CHECKED).format(count=len(reports), counts=counts), file=out)
    rules = Counter(f["rule_id"] for r in reports for f in r["findings"])
    if rules:
        print(_(messages.BY_RULE), file=out)
        for rule_id, count in rules.most_common():
            print(_(messages.RULE_COUNT).format(rule_id=rule_id, count=count), file=out)
    withdraw = [r["path"] for r in reports if r["verdict"] == "do_not_publish"]
    if withdraw:
        print(_(messages.WITHDRAW), file=out)
        for path in withdraw:
            print(f"  {path}", file=out)


def _progress(done: int, total: int) -> None:
    progress = _(messages.PROGRESS).format(done=done, total=total)
    print(f"\r{progress}", end="", file=sys.stderr, flush=True)


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
