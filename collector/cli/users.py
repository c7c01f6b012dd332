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
    no_terminal = users.UserError(
        _("there is no terminal to ask for the password on: give it on standard input with "
          "--password-stdin, or let --generate make one"))
    if not sys.stdin.isatty():
        raise no_terminal
    try:
        first = getpass.getpass(_("password: "))
        again = getpass.getpass(_("again: "))
    except EOFError:
        raise no_terminal from None
    if again != first:
        raise users.UserError(_("the two passwords differ"))
    return first


def cmd_user_create(args: argparse.Namespace, settings: CollectorSettings) -> None:
    password = _password(args)
    with command_store(settings) as db:
        users.create_user(db, args.username, args.role, password, utcnow(),
                          display_name=args.display_name)
    print(_("created user {username} (role {role})").format(
        username=args.username, role=args.role))
    if args.generate:
        print(_("initial password (shown once): {password}").format(password=password))


def cmd_user_list(_args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        rows = users.list_users(db)

    def when(value: object) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%SZ") if hasattr(value, "strftime") else "-"

    print_table(
        [[r["username"], r["display_name"] or "-", r["role"],
          _("disabled") if r["disabled_at"] else _("enabled"), when(r["locked_until"]),
          when(r["last_login_at"]), _("directory") if r["source"] == "ldap" else _("local")]
         for r in rows],
        [_("username"), _("display name"), _("role"), _("state"), _("locked until"),
         _("last login"), _("source")],
    )


def cmd_user_disable(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        users.set_disabled(db, args.username, args.action == "disable", utcnow())
    done = (_("user {username} disabled (their sessions ended)") if args.action == "disable"
            else _("user {username} enabled"))
    print(done.format(username=args.username))


def cmd_user_passwd(args: argparse.Namespace, settings: CollectorSettings) -> None:
    password = _password(args)
    with command_store(settings) as db:
        users.set_password(db, args.username, password, utcnow())
    print(_("new password set for user {username}; their sessions ended").format(
        username=args.username))
    if args.generate:
        print(_("new password (shown once): {password}").format(password=password))


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
