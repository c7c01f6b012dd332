"""``courtguard-collector token create|list|revoke``: enrollment tokens."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

from agent.events import utcnow
from collector.cli.policy import group_name
from collector.cli.store import command_store
from collector.cli.table import format_time, print_table
from collector.messages import _
from collector.settings import CollectorSettings
from collector.store import tokens

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d`` (and ``90s``) as a timedelta."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(
            _("{text!r} is not a duration like 30m, 24h or 7d").format(text=text))
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def cmd_token_create(args: argparse.Namespace, settings: CollectorSettings) -> None:
    now = utcnow()
    with command_store(settings) as db:
        new = tokens.create_token(db, group=args.group, now=now, expires_at=now + args.expires,
                                  uses=args.uses, note=args.note)
    if args.quiet:
        print(new.token)
        return
    uses = (_("unlimited uses") if args.uses is None
            else _("{uses} use(s)").format(uses=args.uses))
    print(_("enrollment token {id} for group {group!r}, {uses}, expires {expires} "
            "(shown once):").format(id=new.id, group=args.group, uses=uses,
                                    expires=format_time(new.expires_at)))
    print(new.token)


def _state_label(state: str) -> str:
    return {"active": _("active"), "expired": _("expired"), "exhausted": _("used up"),
            "revoked": _("revoked")}[state]


def cmd_token_list(_args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        infos = tokens.list_tokens(db)
    now = utcnow()
    rows = [
        [i.id, i.prefix + "…", i.group, _state_label(i.state(now)), format_time(i.created_at),
         format_time(i.expires_at),
         f"{i.uses}/{'∞' if i.uses_left is None else i.uses + i.uses_left}", i.note]
        for i in infos
    ]
    print_table(rows, ["ID", _("prefix"), _("group"), _("state"), _("created"), _("expires"),
                       _("uses"), _("note")])


def cmd_token_revoke(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        tokens.revoke_token(db, args.token_id, utcnow())
    print(_("token {id} revoked").format(id=args.token_id))


def add_token_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                       common: argparse.ArgumentParser) -> None:
    token = sub.add_parser("token", help=_("enrollment tokens")).add_subparsers(
        dest="action", required=True, metavar="ACTION")
    create = token.add_parser("create", parents=[common], help=_("make an enrollment token"))
    create.add_argument("--group", type=group_name, default="default",
                        help=_("group the enrolled agents join"))
    create.add_argument("--expires", type=parse_duration, default=timedelta(hours=24),
                        metavar="DURATION", help=_("lifetime: 30m, 24h, 7d (default 24h)"))
    create.add_argument("--uses", type=int, default=None,
                        help=_("how many agents may enroll with it "
                               "(default: unlimited until expiry)"))
    create.add_argument("--note", default="", help=_("free text shown in `token list`"))
    create.add_argument("--quiet", action="store_true", help=_("print only the token"))
    create.set_defaults(func=cmd_token_create)
    token.add_parser("list", parents=[common], help=_("list tokens")).set_defaults(
        func=cmd_token_list)
    revoke = token.add_parser("revoke", parents=[common], help=_("revoke a token"))
    revoke.add_argument("token_id", metavar="ID")
    revoke.set_defaults(func=cmd_token_revoke)
