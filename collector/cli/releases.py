"""``courtguard-collector release ...``: publish, promote, roll back and follow agent releases."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from agent.events import utcnow
from agent.upgrade.release import MAX_PACKAGE_BYTES
from collector.cli.policy import _author, _note, group_name
from collector.cli.store import command_store
from collector.cli.table import print_table
from collector.errors import CollectorError
from collector.messages import _
from collector.policy.signing import load_signing_key
from collector.releases import store
from collector.releases.status import release_status
from collector.settings import CollectorSettings
from collector.store.audit import Actor


def _action_label(action: str) -> str:
    return {"publish": _("publish"), "promote": _("promote"), "rollback": _("roll back")}[action]


def _said(row: store.ReleaseRow) -> str:
    target = (_("group {group}").format(group=row.group) if row.group else _("all groups"))
    return _("agent version {version} ({architecture}) signed, action: {action} ({target}, "
             "release record {id}, sha256 {sha256}…); agents learn of it at their next report "
             "and upgrade").format(
        version=row.version, architecture=row.architecture, action=_action_label(row.action),
        target=target, id=row.id, sha256=row.sha256[:16])


def _read_package(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_PACKAGE_BYTES:
            raise CollectorError(_("{path} is larger than {limit} MiB: not an agent package")
                                 .format(path=path, limit=MAX_PACKAGE_BYTES // 2**20))
        return path.read_bytes()
    except FileNotFoundError:
        raise CollectorError(_("{path} does not exist: give the path of an agent .deb package")
                             .format(path=path)) from None
    except IsADirectoryError:
        raise CollectorError(_("{path} is a directory: give an agent .deb package file")
                             .format(path=path)) from None
    except PermissionError:
        raise CollectorError(_("{path} cannot be read: permission denied")
                             .format(path=path)) from None


def cmd_release_publish(args: argparse.Namespace, settings: CollectorSettings) -> None:
    body = _read_package(args.package)
    key = load_signing_key(settings.data_dir)
    actor = Actor(_author(args.author), via="cli")
    with command_store(settings) as db:
        row = store.publish_release(db, body, key, group=args.group, author=actor.name,
                                    note=args.note, created_at=utcnow(), actor=actor)
    print(_said(row))


def cmd_release_promote(args: argparse.Namespace, settings: CollectorSettings) -> None:
    key = load_signing_key(settings.data_dir)
    actor = Actor(_author(args.author), via="cli")
    with command_store(settings) as db:
        rows = store.promote(db, args.version, key.public_key.text, author=actor.name,
                             note=args.note, created_at=utcnow(), actor=actor)
    for row in rows:
        print(_said(row))


def cmd_release_rollback(args: argparse.Namespace, settings: CollectorSettings) -> None:
    key = load_signing_key(settings.data_dir)
    actor = Actor(_author(args.author), via="cli")
    with command_store(settings) as db:
        rows = store.rollback(db, key.public_key.text, group=args.group, architecture=args.arch,
                              author=actor.name, note=args.note, created_at=utcnow(),
                              actor=actor)
    for row in rows:
        print(_said(row))
    print(_("agents already on the newer version are not downgraded; agents that have not "
            "upgraded stay on or return to the previous version"))


def cmd_release_list(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        status = release_status(db)
    if args.json:
        print(json.dumps(status["releases"], ensure_ascii=False, indent=2))
        return
    print_table(
        [[str(r["id"]), r["version"], r["architecture"], r["group"] or _("all"),
          _action_label(r["action"]), r["created_at"][:19], r["author"], r["sha256"][:16],
          r["note"]] for r in status["releases"]],
        [_("record"), _("version"), _("architecture"), _("target group"), _("action"),
         _("time (UTC)"), _("author"), "sha256", _("note")])


def cmd_release_status(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        status = release_status(db)
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2))
        return
    print_table(
        [[v["version"], v["architecture"], _(", ").join(v["target_groups"]) or _("(none)"),
          str(v["targeted"]), str(v["downloaded"]), str(v["installed"]), str(v["failed"]),
          str(v["refused"]), str(v["pending"])] for v in status["versions"]],
        [_("version"), _("architecture"), _("current target groups"), _("targeted agents"),
         _("downloaded"), _("installed"), _("install failed"), _("refused"), _("pending")])


def add_release_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """The ``release`` command group, added to the collector's parser."""
    # Every command that changes what agents are offered records who did it and why.
    change = argparse.ArgumentParser(add_help=False)
    change.add_argument("--note", type=_note, default="", help=_("what changed and why"))
    change.add_argument("--author", default=None,
                        help=_("default: $SUDO_USER or the login name"))
    release = sub.add_parser("release", help=_("publish and roll out signed agent packages")
                             ).add_subparsers(dest="action", required=True, metavar="ACTION")
    publish = release.add_parser("publish", parents=[common, change],
                                 help=_("sign an agent .deb and target a group (canary) or all"))
    publish.add_argument("package", type=Path, metavar="PACKAGE")
    publish.add_argument("--group", type=group_name, default=None,
                         help=_("only agents of this group get it (a canary); "
                                "default: every group"))
    publish.set_defaults(func=cmd_release_publish)

    promote = release.add_parser("promote", parents=[common, change],
                                 help=_("target every group with a published version"))
    promote.add_argument("version", metavar="VERSION")
    promote.set_defaults(func=cmd_release_promote)

    rollback = release.add_parser("rollback", parents=[common, change],
                                  help=_("target a group (or all) with its previous release again"))
    rollback.add_argument("--group", type=group_name, default=None,
                          help=_("roll back only this group; default: every group"))
    rollback.add_argument("--arch", default=None, help=_("only this architecture"))
    rollback.set_defaults(func=cmd_release_rollback)

    status = release.add_parser("status", parents=[common],
                                help=_("how far each release's rollout has gone"))
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_release_status)

    listing = release.add_parser("list", parents=[common],
                                 help=_("every publish, promote, rollback"))
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_release_list)
