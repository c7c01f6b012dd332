"""``courtguard-collector release ...``: publish, promote, roll back and follow agent releases."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Final

from agent.events import utcnow
from agent.upgrade.release import MAX_PACKAGE_BYTES
from collector.cli.policy import _author, _note, group_name
from collector.cli.store import command_store
from collector.cli.table import print_table
from collector.errors import CollectorError
from collector.policy.signing import load_signing_key
from collector.releases import store
from collector.releases.status import release_status
from collector.settings import CollectorSettings
from collector.store.audit import Actor

ACTION_LABELS: Final = {"publish": "发布", "promote": "推广", "rollback": "回滚"}


def _said(row: store.ReleaseRow) -> str:
    target = f"分组 {row.group}" if row.group else "全部分组"
    return (f"代理版本 {row.version}（{row.architecture}）已签名{ACTION_LABELS[row.action]}"
            f"（{target}，发布记录 {row.id}，sha256 {row.sha256[:16]}…）；"
            "代理将在下一次上报时得知并升级")


def _read_package(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_PACKAGE_BYTES:
            raise CollectorError(f"{path} 大于 {MAX_PACKAGE_BYTES // 2**20} MiB，不是代理软件包")
        return path.read_bytes()
    except FileNotFoundError:
        raise CollectorError(f"{path} 不存在：请给出代理 .deb 软件包的路径") from None
    except IsADirectoryError:
        raise CollectorError(f"{path} 是目录：请给出代理 .deb 软件包文件") from None
    except PermissionError:
        raise CollectorError(f"{path} 无法读取：没有权限") from None


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
    print("已升级到新版本的代理不会降级；尚未升级的代理停留在或回到上一个版本")


def cmd_release_list(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        status = release_status(db)
    if args.json:
        print(json.dumps(status["releases"], ensure_ascii=False, indent=2))
        return
    print_table(
        [[str(r["id"]), r["version"], r["architecture"], r["group"] or "全部",
          ACTION_LABELS[r["action"]], r["created_at"][:19], r["author"], r["sha256"][:16],
          r["note"]] for r in status["releases"]],
        ["记录", "版本", "架构", "目标分组", "操作", "时间(UTC)", "发布人", "sha256", "说明"])


def cmd_release_status(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        status = release_status(db)
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2))
        return
    print_table(
        [[v["version"], v["architecture"], "、".join(v["target_groups"]) or "（无）",
          str(v["targeted"]), str(v["downloaded"]), str(v["installed"]), str(v["failed"]),
          str(v["refused"]), str(v["pending"])] for v in status["versions"]],
        ["版本", "架构", "当前目标分组", "目标代理", "已下载", "已安装", "失败", "拒绝", "待升级"])


def add_release_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """The ``release`` command group, added to the collector's parser."""
    release = sub.add_parser("release", help="publish and roll out signed agent packages"
                             ).add_subparsers(dest="action", required=True, metavar="ACTION")
    publish = release.add_parser("publish", parents=[common],
                                 help="sign an agent .deb and target a group (canary) or all")
    publish.add_argument("package", type=Path, metavar="PACKAGE")
    publish.add_argument("--group", type=group_name, default=None,
                         help="only agents of this group get it (a canary); default: every group")
    publish.add_argument("--note", type=_note, default="")
    publish.add_argument("--author", default=None)
    publish.set_defaults(func=cmd_release_publish)

    promote = release.add_parser("promote", parents=[common],
                                 help="target every group with a published version")
    promote.add_argument("version", metavar="VERSION")
    promote.add_argument("--note", type=_note, default="")
    promote.add_argument("--author", default=None)
    promote.set_defaults(func=cmd_release_promote)

    rollback = release.add_parser("rollback", parents=[common],
                                  help="target a group (or all) with its previous release again")
    rollback.add_argument("--group", type=group_name, default=None)
    rollback.add_argument("--arch", default=None, help="only this architecture")
    rollback.add_argument("--note", type=_note, default="")
    rollback.add_argument("--author", default=None)
    rollback.set_defaults(func=cmd_release_rollback)

    status = release.add_parser("status", parents=[common],
                                help="how far each release's rollout has gone")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_release_status)

    listing = release.add_parser("list", parents=[common], help="every publish, promote, rollback")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_release_list)
