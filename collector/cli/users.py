"""``courtguard-collector user create|list|disable|enable|passwd``: console users."""

from __future__ import annotations

import argparse
import getpass
import sys

from agent.events import utcnow
from collector.cli.store import command_store
from collector.cli.table import print_table
from collector.console import users
from collector.messages import _
from collector.settings import CollectorSettings


def _password(args: argparse.Namespace) -> str:
    """From stdin (``--password-stdin``), generated (``--generate``), or asked twice."""
    if args.generate:
        return users.generate_password()
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("密码 / password: ")
    if getpass.getpass("再次输入 / again: ") != first:
        raise users.UserError("the two passwords differ")
    return first


def cmd_user_create(args: argparse.Namespace, settings: CollectorSettings) -> None:
    password = _password(args)
    with command_store(settings) as db:
        users.create_user(db, args.username, args.role, password, utcnow(),
                          display_name=args.display_name)
    print(f"已创建用户 {args.username}（角色 {args.role}）")
    if args.generate:
        print(f"初始密码（仅显示一次）: {password}")


def cmd_user_list(_args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        rows = users.list_users(db)

    def when(value: object) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%SZ") if hasattr(value, "strftime") else "-"

    print_table(
        [[r["username"], r["display_name"] or "-", r["role"],
          "停用" if r["disabled_at"] else "启用", when(r["locked_until"]),
          when(r["last_login_at"]), "目录" if r["source"] == "ldap" else "本地"] for r in rows],
        ["用户名", "显示名", "角色", "状态", "锁定至", "最近登录", "来源"],
    )


def cmd_user_disable(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        users.set_disabled(db, args.username, args.action == "disable", utcnow())
    done = "停用（其会话已结束）" if args.action == "disable" else "启用"
    print(f"用户 {args.username} 已{done}")


def cmd_user_passwd(args: argparse.Namespace, settings: CollectorSettings) -> None:
    password = _password(args)
    with command_store(settings) as db:
        users.set_password(db, args.username, password, utcnow())
    print(f"已为用户 {args.username} 设置新密码，其现有会话已结束")
    if args.generate:
        print(f"新密码（仅显示一次）: {password}")


def add_user_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                      common: argparse.ArgumentParser) -> None:
    user = sub.add_parser("user", help=_("console users")).add_subparsers(
        dest="action", required=True, metavar="ACTION")

    def password_options(parser: argparse.ArgumentParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--password-stdin", action="store_true",
                           help=_("read the password from the first line of stdin"))
        group.add_argument("--generate", action="store_true",
                           help=_("make a random password and print it once"))

    create = user.add_parser("create", parents=[common], help=_("make a console user"))
    create.add_argument("username")
    create.add_argument("--role", required=True, choices=users.ROLES)
    create.add_argument("--display-name", default="")
    password_options(create)
    create.set_defaults(func=cmd_user_create)
    user.add_parser("list", parents=[common], help=_("list console users")).set_defaults(
        func=cmd_user_list)
    for action, text in (("disable", _("disable a user and end their sessions")),
                         ("enable", _("enable a disabled user"))):
        parser = user.add_parser(action, parents=[common], help=text)
        parser.add_argument("username")
        parser.set_defaults(func=cmd_user_disable)
    passwd = user.add_parser("passwd", parents=[common], help=_("set a user's password"))
    passwd.add_argument("username")
    password_options(passwd)
    passwd.set_defaults(func=cmd_user_passwd)
