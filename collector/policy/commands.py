"""``courtguard-collector policy ...``: check, publish, promote, roll back, show status."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agent.policy.check import CheckResult, check_cases, check_directory
from collector.errors import CollectorError
from collector.settings import CollectorSettings


class PolicyCheckFailed(CollectorError):
    """A policy directory has problems; they were printed already."""


def run_check(directory: Path, with_cases: bool) -> CheckResult:
    """Check ``directory`` (and run its cases); print every issue; raise when there are any."""
    from collector.policy.targets import case_targets

    result = check_directory(directory)
    cases = check_cases(result, case_targets()) if with_cases else 0
    for issue in result.issues:
        print(issue.render(), file=sys.stderr)
    if result.issues:
        raise PolicyCheckFailed(
            f"{directory}：发现 {len(result.issues)} 个问题，请按上面的修改方法逐一处理"
        )
    rules = sum(len(d.rules) for d in result.documents.values())
    ran = f"，{cases} 个用例全部符合预期" if with_cases else ""
    print(f"{directory}：{len(result.documents)} 个策略文件、{rules} 条规则检查通过{ran}")
    return result


def cmd_policy_check(args: argparse.Namespace, _settings: CollectorSettings) -> None:
    run_check(args.directory, args.cases)


def add_policy_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """The ``policy`` command group, added to the collector's parser."""
    policy = sub.add_parser("policy", help="check, publish and roll out policy").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    check = policy.add_parser(
        "check",
        parents=[common],
        help="validate a policy directory: every error with file and line",
    )
    check.add_argument("directory", type=Path, metavar="DIR")
    check.add_argument(
        "--cases", action="store_true", help="also run every rule's fire and silent cases"
    )
    check.set_defaults(func=cmd_policy_check)
