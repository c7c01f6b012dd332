"""``courtguard-collector policy ...``: check, publish, promote, roll back, show status."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Final

from agent.events import utcnow
from agent.policy.check import CheckResult, check_cases, check_directory
from collector.cli.store import command_store
from collector.cli.table import print_table
from collector.errors import CollectorError
from collector.messages import _
from collector.policy.publish import publish_bundle
from collector.policy.signing import load_signing_key, verifying_public_key
from collector.policy.status import policy_status
from collector.policy.verification import BundleUntrusted, verify_stored
from collector.settings import CollectorSettings
from collector.store import audit
from collector.store.audit import Actor
from collector.store.policies import StoredBundle, get_bundle

GROUP_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _action_label(action: str) -> str:
    return {"publish": _("publish"), "promote": _("promote"), "rollback": _("roll back")}[action]


def _verified_label(verified: bool | None) -> str:
    return {True: _("passed"), False: _("failed"), None: _("not verified")}[verified]


def _signature_label(algorithm: str | None) -> str:
    labels = {
        "ed25519": "Ed25519",
        "sm2": _("SM2 (Chinese national standard, SM3 digest)"),
        None: _("unknown (this data directory has no signing key, so nothing can be verified)"),
    }
    return labels.get(algorithm, str(algorithm))


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
            _("{directory}: problems found: {count}; fix each as the hints above say").format(
                directory=directory, count=len(result.issues))
        )
    rules = sum(len(d.rules) for d in result.documents.values())
    ran = _(", all {cases} cases as expected").format(cases=cases) if with_cases else ""
    print(_("{directory}: {files} policy files, {rules} rules checked, no problems{ran}").format(
        directory=directory, files=len(result.documents), rules=rules, ran=ran))
    return result


def cmd_policy_check(args: argparse.Namespace, _settings: CollectorSettings) -> None:
    run_check(args.directory, args.cases)


def _author(given: str | None) -> str:
    return (given or os.environ.get("SUDO_USER") or getpass.getuser() or "unknown")[:100]


def _said(bundle: StoredBundle) -> str:
    target = (_("group {group}").format(group=bundle.group) if bundle.group
              else _("all groups"))
    return _(
        "policy version {version} signed and published ({target}, {action}, sha256 {sha256}…); "
        "agents get it at their next fetch (or next report)"
    ).format(version=bundle.version, target=target, action=bundle.action,
             sha256=bundle.sha256[:16])


def cmd_policy_publish(args: argparse.Namespace, settings: CollectorSettings) -> None:
    result = run_check(args.directory, with_cases=True)
    key = load_signing_key(settings.data_dir)
    actor = Actor(_author(args.author), via="cli")
    with command_store(settings) as db:
        bundle = publish_bundle(
            db,
            result.documents,
            key,
            group=args.group,
            author=actor.name,
            note=args.note,
            created_at=utcnow(),
            actor=actor,
        )
    print(_said(bundle))


def _republish(
    args: argparse.Namespace, settings: CollectorSettings, action: str, group: str | None
) -> None:
    """Re-sign a stored version's documents as a new version, once its bytes verify.

    The stored row is checked with the key file's public half first
    (``verify_stored``): re-signing an edited row would launder the edit into
    a bundle every agent accepts. A refusal is audited and nothing is published.
    """
    key = load_signing_key(settings.data_dir)
    actor = Actor(_author(args.author), via="cli")
    with command_store(settings) as db:
        source = get_bundle(db, args.version)
        if action == "promote" and source.group is None:
            raise CollectorError(
                _("version {version} already targets all groups; nothing to promote").format(
                    version=args.version))
        try:
            documents = verify_stored(source, key.public_key.text).documents
        except BundleUntrusted as exc:
            with db.write() as conn:
                audit.record(conn, actor, f"policy.{action}_refused", "policy",
                             str(args.version), utcnow(), from_value=exc.code,
                             reason=exc.reason[:500])
            raise CollectorError(
                _("{reason}. Refused to {action}; no new version made (recorded in the audit "
                  "log). Publish again with policy publish from checked policy files, and find "
                  "out who changed the database").format(reason=exc,
                                                         action=_action_label(action))
            ) from None
        default_note = {
            "promote": f"推广版本 {args.version} 至全部分组",
            "rollback": f"回滚至版本 {args.version} 的内容",
        }[action]
        bundle = publish_bundle(
            db,
            documents,
            key,
            group=group,
            author=actor.name,
            note=args.note or default_note,
            created_at=utcnow(),
            action=action,
            source_version=args.version,
            actor=actor,
        )
    print(_said(bundle))


def cmd_policy_promote(args: argparse.Namespace, settings: CollectorSettings) -> None:
    _republish(args, settings, "promote", None)


def cmd_policy_rollback(args: argparse.Namespace, settings: CollectorSettings) -> None:
    _republish(args, settings, "rollback", args.group)


def cmd_policy_status(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        status = policy_status(db, verifying_public_key(settings.data_dir))
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2))
        return
    rows = [
        [
            str(v["version"]),
            v["group"] or _("all"),
            v["action"],
            v["created_at"][:19],
            v["author"],
            str(v["agents"]),
            _verified_label(v["verified"]),
            v["note"],
        ]
        for v in status["versions"]
    ]
    print_table(
        rows, [_("version"), _("target group"), _("action"), _("created (UTC)"),
               _("author"), _("agents"), _("signature"), _("note")]
    )
    print(_("signature algorithm: {algorithm}").format(
        algorithm=_signature_label(status["signature_algorithm"])))
    for v in status["versions"]:
        if v["verified"] is False:
            print(_("warning: version {version} does not verify ({reason}); the collector "
                    "neither uses nor serves it; find out who changed the database, and "
                    "publish again").format(version=v["version"],
                                            reason=v["verification_failure"]))
    for group in status["groups"]:
        spread = _(", ").join(_("version {version}: {count}").format(version=k, count=n)
                              for k, n in sorted(group["by_version"].items()))
        state = _("converged") if group["converged"] else _("not converged")
        print(_("group {group}: {agents} agents, should run version {target}, {state} "
                "({spread})").format(group=group["group"], agents=group["agents"],
                                     target=group["target_version"] or _("none"),
                                     state=state, spread=spread))


def add_policy_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """The ``policy`` command group, added to the collector's parser."""
    policy = sub.add_parser("policy", help=_("check, publish and roll out policy")).add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    check = policy.add_parser(
        "check",
        parents=[common],
        help=_("validate a policy directory: every error with file and line"),
    )
    check.add_argument("directory", type=Path, metavar="DIR")
    check.add_argument(
        "--cases", action="store_true", help=_("also run every rule's fire and silent cases")
    )
    check.set_defaults(func=cmd_policy_check)

    publish = policy.add_parser(
        "publish",
        parents=[common],
        help=_("check, sign and publish a policy directory as a new version"),
    )
    publish.add_argument("directory", type=Path, metavar="DIR")
    publish.add_argument(
        "--group",
        type=group_name,
        default=None,
        help=_("only agents of this group get it (a canary); default: every group"),
    )
    publish.add_argument("--note", type=_note, default="", help=_("what changed and why"))
    publish.add_argument("--author", default=None, help=_("default: $SUDO_USER or the login name"))
    publish.set_defaults(func=cmd_policy_publish)

    promote = policy.add_parser(
        "promote",
        parents=[common],
        help=_("publish a group's version to every group, as a new version"),
    )
    promote.add_argument("version", type=int, metavar="VERSION")
    promote.add_argument("--note", type=_note, default="")
    promote.add_argument("--author", default=None)
    promote.set_defaults(func=cmd_policy_promote)

    rollback = policy.add_parser(
        "rollback", parents=[common], help=_("republish an earlier version's content as a new "
                                           "version")
    )
    rollback.add_argument("version", type=int, metavar="VERSION")
    rollback.add_argument(
        "--group",
        type=group_name,
        default=None,
        help=_("roll back only this group; default: every group"),
    )
    rollback.add_argument("--note", type=_note, default="")
    rollback.add_argument("--author", default=None)
    rollback.set_defaults(func=cmd_policy_rollback)

    status = policy.add_parser(
        "status", parents=[common], help=_("versions, notes, authors and how many agents run each")
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_policy_status)


def _note(text: str) -> str:
    if len(text) > 500:
        raise argparse.ArgumentTypeError(_("must be at most {count} characters").format(count=500))
    return text


def group_name(text: str) -> str:
    if not GROUP_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            _("{text!r} is not a group name (letters, digits, '.', '-', '_'; at most 64)")
            .format(text=text))
    return text
