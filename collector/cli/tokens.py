"""``courtguard-collector token create|list|revoke``: enrollment tokens."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

from agent.events import utcnow
from collector.cli.policy import group_name
from collector.cli.store import command_store
from collector.cli.table import format_time, print_table
from collector.settings import CollectorSettings
from collector.store import tokens

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d`` (and ``90s``) as a timedelta."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 24h or 7d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def cmd_token_create(args: argparse.Namespace, settings: CollectorSettings) -> None:
    now = utcnow()
    with command_store(settings) as db:
        new = tokens.create_token(db, group=args.group, now=now, expires_at=now + args.expires,
                                  uses=args.uses, note=args.note)
    if args.quiet:
        print(new.token)
        return
    uses = "unlimited uses" if args.uses is None else f"{args.uses} use(s)"
    print(f"enrollment token {new.id} for group {args.group!r}, {uses}, "
          f"expires {format_time(new.expires_at)} (shown once):")
    print(new.token)


def cmd_token_list(_args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        infos = tokens.list_tokens(db)
    now = utcnow()
    rows = [
        [i.id, i.prefix + "…", i.group, i.state(now), format_time(i.created_at),
         format_time(i.expires_at),
         f"{i.uses}/{'∞' if i.uses_left is None else i.uses + i.uses_left}", i.note]
        for i in infos
    ]
    print_table(rows, ["ID", "PREFIX", "GROUP", "STATE", "CREATED", "EXPIRES", "USES", "NOTE"])


def cmd_token_revoke(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        tokens.revoke_token(db, args.token_id, utcnow())
    print(f"token {args.token_id} revoked")


def add_token_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                       common: argparse.ArgumentParser) -> None:
    token = sub.add_parser("token", help="enrollment tokens").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    create = token.add_parser("create", parents=[common], help="make an enrollment token")
    create.add_argument("--group", type=group_name, default="default",
                        help="group the enrolled agents join")
    create.add_argument("--expires", type=parse_duration, default=timedelta(hours=24),
                        metavar="DURATION", help="lifetime: 30m, 24h, 7d (default 24h)")
    create.add_argument("--uses", type=int, default=None,
                        help="how many agents may enroll with it (default: unlimited until expiry)")
    create.add_argument("--note", default="", help="free text shown in `token list`")
    create.add_argument("--quiet", action="store_true", help="print only the token")
    create.set_defaults(func=cmd_token_create)
    token.add_parser("list", parents=[common], help="list tokens").set_defaults(
        func=cmd_token_list)
    revoke = token.add_parser("revoke", parents=[common], help="revoke a token")
    revoke.add_argument("token_id", metavar="ID")
    revoke.set_defaults(func=cmd_token_revoke)
