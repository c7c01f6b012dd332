"""``courtguard-collector``: set up, run and administer the collector.

Every subcommand reads the same settings (``--config``, ``COURTGUARD_COLLECTOR_*``);
expected problems print one ``error:`` line and exit 1, never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agent.errors import CourtguardError
from agent.events import utcnow
from collector import probe_responder
from collector.commandline import command_store as _db
from collector.commandline import print_table as _table
from collector.console.commands import add_user_commands
from collector.errors import CollectorError
from collector.logs import configure_logging
from collector.policy.commands import add_policy_commands, group_name
from collector.policy.signing import key_path, prepare_signing_key
from collector.routing.commands import add_alerting_commands
from collector.settings import CollectorSettings, load_settings
from collector.store import agents as agent_store
from collector.store import apikeys, migrate, tokens

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d`` (and ``90s``) as a timedelta."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 24h or 7d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _settings(args: argparse.Namespace) -> CollectorSettings:
    overrides: dict[str, Any] = {
        "data_dir": args.data_dir, "database_url": args.database_url,
        "listen_host": getattr(args, "host", None), "listen_port": getattr(args, "port", None),
    }
    return load_settings(args.config, **overrides)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def cmd_init(args: argparse.Namespace, settings: CollectorSettings) -> None:
    from collector.tls import ensure_tls

    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    say = (lambda *_a: None) if args.print_key_only else print
    made = ensure_tls(settings.tls_dir, args.san or ())
    say(f"TLS: {'made ' + ', '.join(p.name for p in made) if made else 'kept existing files'}"
        f" in {settings.tls_dir} (agents pin {settings.ca_cert_path.name})")
    with _db(settings) as db:
        migrate.upgrade(db)
        say(f"database: schema at revision {migrate.current_revision(db)}")
        made_key, public = prepare_signing_key(settings.data_dir, db)
        say(f"policy signing key: {'made' if made_key else 'kept'} {key_path(settings.data_dir)}"
            f" (mode 0600; agents pin its public half {public} at enrollment)")
        if apikeys.has_active_key(db, "admin"):
            say("admin API key: one exists already and is not shown again; "
                "`courtguard-collector apikey create --name NAME` makes another")
            return
        _, key = apikeys.create_api_key(db, name="admin", role="admin", now=utcnow())
    say("admin API key (shown once, keep it safe):")
    print(key)


def cmd_serve(_args: argparse.Namespace, settings: CollectorSettings) -> None:
    from collector.server import serve

    serve(settings)


def cmd_migrate(_args: argparse.Namespace, settings: CollectorSettings) -> None:
    with _db(settings) as db:
        migrate.upgrade(db)
        print(f"database schema at revision {migrate.current_revision(db)}")


def cmd_prune(_args: argparse.Namespace, settings: CollectorSettings) -> None:
    from collector.retention import cutoffs, prune

    limits = cutoffs(utcnow(), settings.heartbeat_retention_days, settings.event_retention_days)
    with _db(settings) as db:
        pruned = prune(db, limits)
    def older(before: datetime | None) -> str:
        return f"older than {_when(before)}" if before else "(kept forever)"

    print(f"pruned {pruned.heartbeats} heartbeats {older(limits.heartbeats_before)} "
          f"and {pruned.events} events {older(limits.events_before)}")


def cmd_token_create(args: argparse.Namespace, settings: CollectorSettings) -> None:
    now = utcnow()
    with _db(settings) as db:
        new = tokens.create_token(db, group=args.group, now=now, expires_at=now + args.expires,
                                  uses=args.uses, note=args.note)
    if args.quiet:
        print(new.token)
        return
    uses = "unlimited uses" if args.uses is None else f"{args.uses} use(s)"
    print(f"enrollment token {new.id} for group {args.group!r}, {uses}, "
          f"expires {_when(new.expires_at)} (shown once):")
    print(new.token)


def cmd_token_list(_args: argparse.Namespace, settings: CollectorSettings) -> None:
    with _db(settings) as db:
        infos = tokens.list_tokens(db)
    now = utcnow()
    rows = [
        [i.id, i.prefix + "…", i.group, i.state(now), _when(i.created_at), _when(i.expires_at),
         f"{i.uses}/{'∞' if i.uses_left is None else i.uses + i.uses_left}", i.note]
        for i in infos
    ]
    _table(rows, ["ID", "PREFIX", "GROUP", "STATE", "CREATED", "EXPIRES", "USES", "NOTE"])


def cmd_token_revoke(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with _db(settings) as db:
        tokens.revoke_token(db, args.token_id, utcnow())
    print(f"token {args.token_id} revoked")


def cmd_agent_list(_args: argparse.Namespace, settings: CollectorSettings) -> None:
    from collector.api.queries import agent_view
    from collector.monitor import agent_status, load_silent_rule

    with _db(settings) as db:
        rows = agent_store.list_agents(db)
    missed = load_silent_rule(settings.effective_policy_dir).missed_heartbeats
    now = utcnow()
    views = [
        agent_view(r, agent_status(r, now, missed, settings.default_heartbeat_interval_s))
        for r in rows
    ]
    _table(
        [[v["id"], v["hostname"], v["group"], v["status"], v["last_seen_at"] or "-",
          v["agent_version"] or "-", str(v["max_seq"]), str(v["open_gaps"])] for v in views],
        ["ID", "HOSTNAME", "GROUP", "STATUS", "LAST SEEN", "VERSION", "MAX SEQ", "GAPS"],
    )


def cmd_agent_revoke(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with _db(settings) as db:
        changed = agent_store.revoke(db, args.agent_id, args.reason, utcnow())
    print(f"agent {args.agent_id} {'revoked' if changed else 'was already revoked'}")


def cmd_agent_group(args: argparse.Namespace, settings: CollectorSettings) -> None:
    from collector.store.policies import set_agent_group

    with _db(settings) as db:
        previous = set_agent_group(db, args.agent_id, args.group)
    print(f"代理 {args.agent_id} 已从分组 {previous} 移至分组 {args.group}；"
          "它将在下一次拉取策略时获取该分组的策略")


def cmd_apikey_create(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with _db(settings) as db:
        key_id, key = apikeys.create_api_key(db, name=args.name, role=args.role, now=utcnow())
    if not args.quiet:
        print(f"API key {key_id} ({args.name}, role {args.role}), shown once:")
    print(key)


def _common_options(default: Any) -> argparse.ArgumentParser:
    """Options every subcommand takes, before or after its name.

    Subcommands default to SUPPRESS so they do not overwrite a value given before
    the subcommand; each call makes new Action objects, which parents share.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=default,
                        help="TOML settings file (default: $COURTGUARD_COLLECTOR_CONFIG or "
                             "/etc/courtguard/collector.toml)")
    common.add_argument("--data-dir", type=Path, default=default)
    common.add_argument("--database-url", default=default,
                        help="sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="courtguard-collector", description="courtguard central collector",
        parents=[_common_options(None)],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", parents=[common], help="make data dir, TLS, schema, admin key")
    init.add_argument("--san", action="append", metavar="NAME",
                      help="extra DNS name or IP for the server certificate (repeatable)")
    init.add_argument("--print-key-only", action="store_true",
                      help="print nothing but a newly made admin API key")
    init.set_defaults(func=cmd_init)

    serve = sub.add_parser("serve", parents=[common], help="run the API server")
    serve.add_argument("--host", help="listen address (overrides listen_host)")
    serve.add_argument("--port", type=int, help="listen port, 0 for any (overrides listen_port)")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", parents=[common], help="upgrade the database schema").set_defaults(
        func=cmd_migrate)
    sub.add_parser(
        "prune", parents=[common], help="delete events past their retention now (serve does hourly)"
    ).set_defaults(func=cmd_prune)

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

    agent = sub.add_parser("agent", help="enrolled agents").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    agent.add_parser("list", parents=[common], help="list agents").set_defaults(
        func=cmd_agent_list)
    arevoke = agent.add_parser("revoke", parents=[common], help="revoke an agent's credentials")
    arevoke.add_argument("agent_id", metavar="AGENT_ID")
    arevoke.add_argument("--reason", default="revoked by operator")
    arevoke.set_defaults(func=cmd_agent_revoke)
    agroup = agent.add_parser("group", parents=[common],
                              help="move an agent to another group (its policy follows)")
    agroup.add_argument("agent_id", metavar="AGENT_ID")
    agroup.add_argument("group", type=group_name, metavar="GROUP")
    agroup.set_defaults(func=cmd_agent_group)

    add_policy_commands(sub, common)
    add_user_commands(sub, common)

    apikey = sub.add_parser("apikey", help="API keys").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    kcreate = apikey.add_parser("create", parents=[common], help="make an API key")
    kcreate.add_argument("--name", required=True)
    kcreate.add_argument("--role", default="admin", choices=apikeys.ROLES)
    kcreate.add_argument("--quiet", action="store_true", help="print only the key")
    kcreate.set_defaults(func=cmd_apikey_create)

    probe_responder.add_parser(sub)
    add_alerting_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "token" and args.action == "create" and args.uses is not None \
            and args.uses < 1:
        print("error: --uses must be at least 1", file=sys.stderr)
        return 2
    try:
        if getattr(args, "standalone", False):  # needs no collector settings or store
            return int(args.func(args))
        settings = _settings(args)
        configure_logging(settings.log_format, settings.log_level)
        args.func(args, settings)
    except (CollectorError, CourtguardError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

