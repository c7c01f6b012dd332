"""``courtguard-collector apikey create``: API keys for scripts."""

from __future__ import annotations

import argparse

from agent.events import utcnow
from collector.cli.store import command_store
from collector.messages import _
from collector.settings import CollectorSettings
from collector.store import apikeys


def cmd_apikey_create(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        key_id, key = apikeys.create_api_key(db, name=args.name, role=args.role, now=utcnow())
    if not args.quiet:
        print(_("API key {id} ({name}, role {role}), shown once:").format(
            id=key_id, name=args.name, role=args.role))
    print(key)


def add_apikey_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                        common: argparse.ArgumentParser) -> None:
    apikey = sub.add_parser("apikey", help=_("API keys")).add_subparsers(
        dest="action", required=True, metavar="ACTION")
    kcreate = apikey.add_parser("create", parents=[common], help=_("make an API key"))
    kcreate.add_argument("--name", required=True)
    kcreate.add_argument("--role", default="admin", choices=apikeys.ROLES)
    kcreate.add_argument("--quiet", action="store_true", help=_("print only the key"))
    kcreate.set_defaults(func=cmd_apikey_create)
