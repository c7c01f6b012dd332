"""policy check: every problem located by file and line, with a fix; lint hooks per kind."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import ClassVar

import pytest

from agent.policy.check import PolicyIssue, check_cases, check_directory
from agent.policy.models import LintProblem, PolicyDocument, Rule, StrictModel
from agent.registry import POLICY_KINDS
from collector.policy.targets import case_targets

CASES = """    cases:
      - {name: f, expect: fires, now: "2026-03-02T09:00:00+08:00",
         observations: [{type: detector_state, detector: x, state: failed, reason: r}]}
      - {name: s, expect: silent, now: "2026-03-02T09:00:00+08:00",
         observations: [{type: detector_state, detector: x, state: ok}]}
"""


def rule(rule_id: str = "agent.detector-degraded", match: str = "{}", extra: str = "") -> str:
    return (
        f"  - id: {rule_id}\n    desc: A detector cannot do its full work.\n"
        f"    severity: medium\n    tags: [stable]\n    match: {match}\n{extra}{CASES}"
    )


def write(tmp_path: Path, body: str, name: str = "agent.yaml") -> Path:
    (tmp_path / name).write_text(body)
    return tmp_path


def issues(tmp_path: Path) -> list[PolicyIssue]:
    return check_directory(tmp_path).issues


HEAD = "kind: agent\nschema_version: 1\nlists: {}\nrules:\n"


def test_clean_file_has_no_issues(tmp_path: Path) -> None:
    """A valid document with both cases passes."""
    assert issues(write(tmp_path, HEAD + rule())) == []


def test_unknown_key_names_its_line_and_the_allowed_keys(tmp_path: Path) -> None:
    """A misspelt match key is reported at its own line with the keys allowed there."""
    found = issues(write(tmp_path, HEAD + rule("agent.silent", "{missed_beats: 3}")))
    assert len(found) == 1
    assert found[0].line == 9
    assert found[0].where == "rules[0](agent.silent).match.missed_beats"
    assert "missed_heartbeats" in found[0].fix


def test_unknown_top_level_key(tmp_path: Path) -> None:
    """A key outside the header's vocabulary is reported at its line."""
    found = issues(write(tmp_path, HEAD.replace("lists: {}\n", "lists: {}\nlistz: {}\n") + rule()))
    assert [(i.line, i.where) for i in found] == [(4, "listz")]


def test_bad_yaml_reports_the_line(tmp_path: Path) -> None:
    """A syntax error names the line the parser stopped at."""
    found = issues(write(tmp_path, HEAD + rule() + "  - id: a: b\n"))
    assert len(found) == 1 and found[0].where == "(YAML)" and found[0].line == 15


def test_duplicate_rule_id_is_reported_at_the_second(tmp_path: Path) -> None:
    """Two rules with one id: the second one's id line, naming the first."""
    found = issues(write(tmp_path, HEAD + rule() + rule()))
    assert [(i.line, i.where) for i in found] == [(15, "rules[1](agent.detector-degraded).id")]
    assert "rules[0]" in found[0].message


def test_rule_without_cases_is_an_error(tmp_path: Path) -> None:
    """A rule lacking a fires case, or both, is reported."""
    body = HEAD + rule().split("    cases:")[0]
    found = issues(write(tmp_path, body))
    assert {i.message for i in found} == {
        "规则 agent.detector-degraded 缺少 `expect: fires` 的用例",
        "规则 agent.detector-degraded 缺少 `expect: silent` 的用例",
    }
    assert all(i.line == 5 for i in found)


def test_repeated_yaml_key_is_reported(tmp_path: Path) -> None:
    """YAML would silently keep the last of two equal keys."""
    body = HEAD + rule().replace(
        "    severity: medium\n", "    severity: medium\n    severity: low\n"
    )
    found = issues(write(tmp_path, body))
    assert [(i.line, i.where) for i in found] == [(8, "rules[0].severity")]


def test_unknown_kind_lists_the_known(tmp_path: Path) -> None:
    """An unknown kind names the kinds this code base understands."""
    found = issues(write(tmp_path, "kind: nope\nschema_version: 1\nrules: []\n"))
    assert found[0].line == 1 and "agent" in found[0].fix


def test_second_file_of_a_kind(tmp_path: Path) -> None:
    """One file per kind."""
    write(tmp_path, HEAD + rule())
    found = issues(write(tmp_path, HEAD + rule(), name="z.yaml"))
    assert [(i.file.name, i.line) for i in found] == [("z.yaml", 1)]


def test_failing_case_is_reported_at_the_case(tmp_path: Path) -> None:
    """--cases runs each case through its evaluator and locates a failing one."""
    body = HEAD + rule().replace("state: failed, reason: r", "state: ok")
    result = check_directory(write(tmp_path, body))
    assert check_cases(result, case_targets()) == 2
    assert [(i.line, i.where) for i in result.issues] == [
        (11, "rules[0](agent.detector-degraded).cases[0](f)")
    ]


class RangeMatch(StrictModel):
    allowed: str
    forbidden: str


class RangePolicy(PolicyDocument):
    """A kind with its own lint: a list reference and overlapping ranges."""

    KIND: ClassVar[str] = "ranges"
    rules: list[Rule[RangeMatch]]

    def lint(self) -> list[LintProblem]:
        problems = super().lint()
        for index, item in enumerate(self.rules):
            for key in ("allowed", "forbidden"):
                problem = self.unknown_list(
                    ("rules", index, "match", key), getattr(item.match, key)
                )
                if problem:
                    problems.append(problem)
            if item.match.allowed in self.lists and item.match.forbidden in self.lists:
                nets = [
                    [ipaddress.ip_network(n) for n in self.lists[getattr(item.match, k)]]
                    for k in ("allowed", "forbidden")
                ]
                if any(a.overlaps(b) for a in nets[0] for b in nets[1]):
                    problems.append(
                        LintProblem(
                            ("rules", index, "match"),
                            "allowed and forbidden ranges overlap",
                            "make the ranges disjoint",
                        )
                    )
        return problems


RANGES = """kind: ranges
schema_version: 1
lists:
  intranet: [198.18.0.0/15]
  outside: [198.19.0.0/16]
rules:
  - id: ranges.x
    desc: Ranges rule for the lint hook test.
    severity: low
    tags: [stable]
    match: {allowed: intranet, forbidden: MISSING}
    cases: [{name: f, expect: fires, now: "2026-03-02T09:00:00+08:00", observations: [1]},
            {name: s, expect: silent, now: "2026-03-02T09:00:00+08:00", observations: [1]}]
"""


def test_kind_lint_hook_reports_unknown_list_and_overlap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kind's own lint() problems are located like any other, without check naming the kind."""
    monkeypatch.setitem(POLICY_KINDS, "ranges", RangePolicy)
    found = issues(write(tmp_path, RANGES, "ranges.yaml"))
    assert [(i.line, i.where) for i in found] == [(11, "rules[0](ranges.x).match.forbidden")]
    assert "MISSING" in found[0].message
    found = issues(write(tmp_path, RANGES.replace("MISSING", "outside"), "ranges.yaml"))
    assert [(i.line, i.message) for i in found] == [(11, "allowed and forbidden ranges overlap")]


NETWORKS = Path(__file__).resolve().parents[3] / "policies" / "networks.yaml"


def networks_issues(tmp_path: Path, *edits: tuple[str, str]) -> list[tuple[int | None, str]]:
    text = NETWORKS.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    return [(i.line, i.where) for i in issues(write(tmp_path, text, "networks.yaml"))]


def line_of(fragment: str) -> int:
    return next(n for n, line in enumerate(NETWORKS.read_text().splitlines(), 1)
                if fragment in line)


def test_networks_bad_cidr_and_unknown_list_are_located(tmp_path: Path) -> None:
    """The networks kind's lint: a bad CIDR at its list's line, an unknown list at its role."""
    found = networks_issues(tmp_path, ("198.18.0.0/15]", "198.18.0.0/33]"),
                            ("resolvers: [intranet_resolvers]", "resolvers: [intranet_resolverz]"))
    assert found == [(line_of("court_intranet: ["), "lists.court_intranet[3]"),
                     (line_of("resolvers: [intranet_resolvers]"), "settings.resolvers[0]")]


def test_networks_canary_inside_the_intranet_overlaps(tmp_path: Path) -> None:
    """An outside canary address that lies in the allowed intranet ranges is an error."""
    found = networks_issues(
        tmp_path, ("public_canaries: [1.1.1.1,", "public_canaries: [198.18.0.9,")
    )
    assert found == [(line_of("public_canaries:"), "lists.public_canaries[0]")]
