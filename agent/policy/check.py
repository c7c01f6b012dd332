"""Check a policy directory and say, for every problem, the file, the line and the fix.

``policy check`` and ``policy publish`` call ``check_directory``:

1. each ``*.yaml`` is composed with PyYAML (nodes keep their line), checked for
   repeated keys, then loaded;
2. the header picks the kind's model from ``agent.registry.POLICY_KINDS``; pydantic's errors
   are mapped back to lines through the composed nodes, and a fix is named
   from the error's type (an unknown key lists the keys allowed there);
3. a valid document's cross-field problems come from its ``lint()`` hook, so
   each kind adds its own checks without this module naming any kind;
4. every rule must carry at least one ``fires`` and one ``silent`` case;
5. a kind may appear in one file only.

Running the cases themselves needs the evaluators (agent detectors and
collector correlators), which the caller passes to ``check_cases``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Union

import yaml
from pydantic import BaseModel, ValidationError

from agent.policy.loader import MAX_POLICY_FILE_BYTES
from agent.policy.models import (
    SKIP_LINT,
    KeyPath,
    PolicyDocument,
    PolicyHeader,
    format_path,
)
from agent.registry import POLICY_KINDS


@dataclass(frozen=True)
class PolicyIssue:
    """One problem, located: ``line`` is 1-based (None when the file has no usable lines)."""

    file: Path
    line: int | None
    where: str
    message: str
    fix: str

    def render(self) -> str:
        place = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        return f"{place}: {self.where}: {self.message}\n    修改方法：{self.fix}"


@dataclass
class CheckResult:
    """The documents that validated, and every problem found."""

    documents: dict[str, PolicyDocument] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    nodes: dict[str, yaml.Node] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)
    issues: list[PolicyIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues


_FIXES: Final[dict[str, str]] = {
    "missing": "补上这个键",
    "literal_error": "改用错误信息列出的取值之一",
    "enum": "改用错误信息列出的取值之一",
    "string_pattern_mismatch": "只用小写字母、数字和 . - _，符合错误信息中的格式",
    "string_too_long": "缩短这段文字",
    "string_too_short": "写得更完整（desc 要说明规则检测什么、如何调整）",
    "too_short": "补充条目：此列表不能为空",
    "ip_v4_network": "写成不带主机位的 IPv4 CIDR 网段，例如 198.18.0.0/15",
    "ip_v6_network": "写成不带主机位的 IPv6 CIDR 网段，例如 2001:db8::/32",
    "ip_any_network": "写成不带主机位的 CIDR 网段，例如 198.18.0.0/15",
    "ip_any_address": "写成单个 IP 地址，例如 198.18.0.1",
    "int_parsing": "写一个整数",
    "int_type": "写一个整数",
    "float_parsing": "写一个数字",
    "bool_parsing": "写 true 或 false",
    "bool_type": "写 true 或 false",
    "date_from_datetime_parsing": "日期写成 YYYY-MM-DD",
    "datetime_from_date_parsing": "时间写成 2026-03-02T09:00:00+08:00",
    "list_type": "写成 YAML 列表（[a, b] 或每行一个 - 项）",
    "dict_type": "写成映射（键: 值）",
    "model_type": "写成映射（键: 值）",
    "greater_than_equal": "改用更大的值",
    "less_than_equal": "改用更小的值",
    "value_error": "按错误信息修改取值",
}
#: The fix when an error's type has none of its own.
_DEFAULT_FIX: Final = "参照 docs/policy.md 中此类策略的键和取值"


def allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str] | None:
    """The keys the model takes at ``loc`` (the location of an unknown key), if it is a model."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            if typing.get_origin(current) in (list, tuple, set):
                current = typing.get_args(current)[0]
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            if part in current.model_fields:
                current = current.model_fields[part].annotation
            continue
        if typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional, so the model or container underneath shows."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def locate(root: yaml.Node | None, loc: Sequence[str | int]) -> tuple[int | None, KeyPath]:
    """The 1-based line of ``loc`` in the composed document, and the part of it that exists.

    Parts pydantic adds that are not in the file (union tags, validator names)
    are skipped; an unknown key's line is the line of the key itself.
    """
    if root is None:
        return None, ()
    node: yaml.Node = root
    line = node.start_mark.line + 1
    found: list[str | int] = []
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    line, node = key.start_mark.line + 1, value
                    found.append(part)
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and (0 <= part < len(node.value))
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
            found.append(part)
    return line, tuple(found)


def _where(path: KeyPath, document: Any) -> str:
    """The path, with the rule id after ``rules[i]`` so a reader knows which rule."""
    text = format_path(path)
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int) and document:
        rules = document.get("rules") if isinstance(document, dict) else None
        if isinstance(rules, list) and 0 <= path[1] < len(rules):
            rule = rules[path[1]]
            if isinstance(rule, dict) and isinstance(rule.get("id"), str):
                text = text.replace(f"rules[{path[1]}]", f"rules[{path[1]}]({rule['id']})", 1)
    return text


def _repeated_keys(file: Path, node: yaml.Node | None, path: KeyPath = ()) -> list[PolicyIssue]:
    """YAML keeps the last of two equal keys silently; a policy author never means that."""
    issues: list[PolicyIssue] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                issues.append(
                    PolicyIssue(
                        file,
                        key.start_mark.line + 1,
                        format_path((*path, name)),
                        f"键 {name!r} 在同一映射中出现两次，YAML 只会保留后一个",
                        "删除其中一个，或合并两者的值",
                    )
                )
            seen.add(name)
            issues += _repeated_keys(file, value, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            issues += _repeated_keys(file, item, (*path, index))
    return issues


def check_source(file: Path, raw: bytes, result: CheckResult) -> PolicyDocument | None:
    """Check one file's bytes into ``result``; the document when it validated."""
    if len(raw) > MAX_POLICY_FILE_BYTES:
        result.issues.append(
            PolicyIssue(
                file,
                None,
                "(file)",
                f"文件超过 {MAX_POLICY_FILE_BYTES} 字节",
                "精简列表，或把规则拆分到多个策略类别",
            )
        )
        return None
    try:
        root = yaml.compose(raw, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        result.issues.append(
            PolicyIssue(
                file, line, "(YAML)", f"不是有效的 YAML：{problem}", "检查此行的缩进、引号或括号"
            )
        )
        return None
    result.issues += _repeated_keys(file, root)
    if not isinstance(data, dict):
        result.issues.append(
            PolicyIssue(
                file,
                1,
                "(top level)",
                "文件应为包含 kind、schema_version、lists、rules 的映射",
                "文件以 `kind: <类别>` 开头",
            )
        )
        return None
    issue = _add_validation_issues(file, root, data, PolicyHeader, result)
    if issue:
        return None
    kind = str(data["kind"])
    model = POLICY_KINDS.get(kind)
    if model is None:
        line, _ = locate(root, ("kind",))
        result.issues.append(
            PolicyIssue(
                file,
                line,
                "kind",
                f"未知的策略类别 {kind!r}",
                f"改用以下之一：{', '.join(sorted(POLICY_KINDS))}",
            )
        )
        return None
    if _add_validation_issues(file, root, data, model, result):
        return None
    document = model.model_validate(data, context=SKIP_LINT)
    for problem in document.lint():
        line, _ = locate(root, problem.path)
        result.issues.append(
            PolicyIssue(file, line, _where(problem.path, data), problem.message, problem.fix)
        )
    for index, rule in enumerate(document.rules):
        expected = {case.expect for case in rule.cases}
        for expect in ("fires", "silent"):
            if expect not in expected:
                path: KeyPath = ("rules", index, "cases") if rule.cases else ("rules", index, "id")
                line, _ = locate(root, path)
                result.issues.append(
                    PolicyIssue(
                        file,
                        line,
                        _where(path, data),
                        f"规则 {rule.id} 缺少 `expect: {expect}` 的用例",
                        f"在 cases: 下添加一个 expect: {expect} 的用例（含 now 和使规则"
                        f"{'触发' if expect == 'fires' else '保持静默'}的 observations）",
                    )
                )
    if kind in result.documents:
        line, _ = locate(root, ("kind",))
        result.issues.append(
            PolicyIssue(
                file,
                line,
                "kind",
                f"第二个 {kind!r} 类别的文件（第一个：{result.files[kind].name}）",
                "每个类别只保留一个文件，合并两者",
            )
        )
        return None
    result.documents[kind] = document
    result.files[kind] = file
    result.raw[kind] = raw
    if root is not None:
        result.nodes[kind] = root
    return document


def _add_validation_issues(
    file: Path, root: yaml.Node | None, data: Any, model: type[BaseModel], result: CheckResult
) -> bool:
    """Validate ``data`` against ``model`` without lint; record every error; True if any."""
    try:
        model.model_validate(data, context=SKIP_LINT)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            loc = tuple(error["loc"])
            line, found = locate(root, loc)
            fix = _FIXES.get(error["type"], _DEFAULT_FIX)
            if error["type"] == "extra_forbidden" and loc:
                keys = allowed_keys(model, loc[:-1]) or []
                fix = f"删除 {loc[-1]!r} 或更正拼写；此处允许的键：{', '.join(keys) or '无'}"
                found = (*found, loc[-1]) if not found or found[-1] != loc[-1] else found
            result.issues.append(
                PolicyIssue(file, line, _where(found, data), str(error["msg"]), fix)
            )
        return True
    return False


def check_directory(directory: Path) -> CheckResult:
    """Check every ``*.yaml`` in ``directory``; see the module docstring for what is checked."""
    result = CheckResult()
    if not directory.is_dir():
        result.issues.append(
            PolicyIssue(directory, None, "(directory)", "不是目录", "指定策略目录（policies/）")
        )
        return result
    files = sorted(directory.glob("*.yaml"))
    if not files:
        result.issues.append(
            PolicyIssue(
                directory, None, "(directory)", "目录中没有 *.yaml 文件", "指定存放策略文件的目录"
            )
        )
    for file in files:
        try:
            raw = file.read_bytes()
        except OSError as exc:
            result.issues.append(
                PolicyIssue(file, None, "(file)", f"无法读取：{exc.strerror}", "检查文件权限")
            )
            continue
        check_source(file, raw, result)
    return result


#: What ``check_cases`` runs a section's cases through, by (scope, section).
CaseTargets = Mapping[tuple[str, str], Any]


def check_cases(
    result: CheckResult, targets: CaseTargets, run: Callable[..., Any] | None = None
) -> int:
    """Run every case of every valid document; add an issue per failure; return cases run."""
    from agent.policy.cases import run_case

    runner = run or run_case
    count = 0
    for kind, document in result.documents.items():
        root = result.nodes.get(kind)
        for index, rule in enumerate(document.rules):
            target = targets.get((rule.scope, kind))
            if target is None:
                if not rule.cases:
                    continue
                line, _ = locate(root, ("rules", index, "scope"))
                if line == locate(root, ("rules", index))[0]:
                    line, _ = locate(root, ("rules", index, "id"))
                result.issues.append(
                    PolicyIssue(
                        result.files[kind],
                        line,
                        f"rules[{index}]({rule.id})",
                        f"没有读取 {kind!r} 的 {rule.scope} 端评估器，用例无法运行",
                        "把 scope: 设为规则实际评估的一端（agent 或 collector），"
                        "或在注册表中加入读取此类别的检测器/关联器",
                    )
                )
                continue
            for case_index, case in enumerate(rule.cases):
                count += 1
                outcome = runner(target, document, rule.id, case)
                if outcome.passed:
                    continue
                path: KeyPath = ("rules", index, "cases", case_index)
                line, _ = locate(root, path)
                result.issues.append(
                    PolicyIssue(
                        result.files[kind],
                        line,
                        f"rules[{index}]({rule.id}).cases[{case_index}]({case.name})",
                        str(outcome.problem),
                        "修改用例的 observations 或 expect，或修改规则的 match",
                    )
                )
    return count
