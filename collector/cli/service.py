"""``courtguard-collector init|serve|migrate|prune``: set up and run the collector."""

from __future__ import annotations

import argparse
from datetime import datetime

from agent.events import utcnow
from agent.signing import ALGORITHMS
from collector.cli.store import command_store
from collector.cli.table import format_time
from collector.messages import _
from collector.policy.signing import key_path, prepare_signing_key, signature_algorithm
from collector.settings import CollectorSettings
from collector.store import apikeys, migrate


def cmd_init(args: argparse.Namespace, settings: CollectorSettings) -> None:
    from collector.tls import ensure_tls

    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    say = (lambda *_a: None) if args.print_key_only else print
    made = ensure_tls(settings.tls_dir, args.san or ())
    files = (_("made {files}").format(files=", ".join(p.name for p in made)) if made
             else _("kept existing files"))
    say(_("TLS: {files} in {dir} (agents pin {ca})").format(
        files=files, dir=settings.tls_dir, ca=settings.ca_cert_path.name))
    with command_store(settings) as db:
        migrate.upgrade(db)
        say(_("database: schema at revision {revision}").format(
            revision=migrate.current_revision(db)))
        made_key, public = prepare_signing_key(settings.data_dir, db, args.signature_algorithm)
        say((_("policy signing key: made {path} ({algorithm}, mode 0600; agents pin its "
               "algorithm and public half {public} at enrollment)") if made_key else
             _("policy signing key: kept {path} ({algorithm}, mode 0600; agents pin its "
               "algorithm and public half {public} at enrollment)")).format(
            path=key_path(settings.data_dir), algorithm=signature_algorithm(public),
            public=public))
        if apikeys.has_active_key(db, "admin"):
            say(_("admin API key: one exists already and is not shown again; "
                  "`courtguard-collector apikey create --name NAME` makes another"))
            return
        _key_id, key = apikeys.create_api_key(db, name="admin", role="admin", now=utcnow())
    say(_("admin API key (shown once, keep it safe):"))
    print(key)


def cmd_serve(_args: argparse.Namespace, settings: CollectorSettings) -> None:
    from collector.server import serve

    serve(settings)


def cmd_migrate(_args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        migrate.upgrade(db)
        print(_("database schema at revision {revision}").format(
            revision=migrate.current_revision(db)))


def cmd_prune(_args: argparse.Namespace, settings: CollectorSettings) -> None:
    from collector.retention import cutoffs, prune

    limits = cutoffs(utcnow(), settings.heartbeat_retention_days, settings.event_retention_days)
    with command_store(settings) as db:
        pruned = prune(db, limits)
    def older(before: datetime | None) -> str:
        return (_("older than {time}").format(time=format_time(before)) if before
                else _("(kept forever)"))

    print(_("pruned {heartbeats} heartbeats {heartbeats_older} and {events} events "
            "{events_older}").format(
        heartbeats=pruned.heartbeats, heartbeats_older=older(limits.heartbeats_before),
        events=pruned.events, events_older=older(limits.events_before)))


def add_service_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                         common: argparse.ArgumentParser) -> None:
    init = sub.add_parser("init", parents=[common], help=_("make data dir, TLS, schema, admin key"))
    init.add_argument("--san", action="append", metavar="NAME",
                      help=_("extra DNS name or IP for the server certificate (repeatable)"))
    init.add_argument("--signature-algorithm", choices=ALGORITHMS, default=None,
                      help=_("policy signing algorithm for a new key: ed25519 (default) or sm2 "
                           "(国密 SM2 with SM3); an existing key keeps its algorithm"))
    init.add_argument("--print-key-only", action="store_true",
                      help=_("print nothing but a newly made admin API key"))
    init.set_defaults(func=cmd_init)

    serve = sub.add_parser("serve", parents=[common], help=_("run the API server"))
    serve.add_argument("--host", help=_("listen address (overrides listen_host)"))
    serve.add_argument("--port", type=int, help=_("listen port, 0 for any (overrides listen_port)"))
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", parents=[common], help=_("upgrade the database schema")).set_defaults(
        func=cmd_migrate)
    sub.add_parser(
        "prune", parents=[common], help=_("delete events past their retention now "
                                           "(serve does hourly)")
    ).set_defaults(func=cmd_prune)
