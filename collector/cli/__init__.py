"""``courtguard-collector``: set up, run and administer the collector.

One module per command group (``service``: init, serve, migrate, prune;
``tokens``, ``agents``, ``hosts`` (isolation), ``policy``, ``release`` (agent upgrades),
``users``, ``apikeys``,
``alerting``: duty, silences and test messages; ``patrol``: one pass of the published-documents
patrol; ``export``: SIEM outputs;
``backup``: backup and restore), each adding its subcommands to the parser
built here. Every subcommand reads the same settings (``--config``,
``COURTGUARD_COLLECTOR_*``); expected problems print an ``error:`` line, perhaps
a hint, and exit with the code ``collector.errors.describe_failure`` gives
(docs/cli.md), never a traceback. Words a person reads go through ``_`` (gettext).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collector import probe_responder
from collector.cli.agents import add_agent_commands
from collector.cli.alerting import add_alerting_commands
from collector.cli.apikeys import add_apikey_commands
from collector.cli.backup import add_backup_commands
from collector.cli.export import add_export_commands
from collector.cli.hosts import add_host_commands
from collector.cli.patrol import add_patrol_commands
from collector.cli.policy import add_policy_commands
from collector.cli.releases import add_release_commands
from collector.cli.service import add_service_commands
from collector.cli.tokens import add_token_commands
from collector.cli.users import add_user_commands
from collector.errors import EXIT_INTERRUPTED, EXIT_USAGE, describe_failure
from collector.logs import configure_logging
from collector.messages import CATALOGUE, _
from collector.settings import CollectorSettings, load_settings


class _VersionAction(argparse.Action):
    """``--version``: the package version and the schema head this build migrates to; it
    reads no settings and opens no database, so it works anywhere."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        from agent.version import __version__
        from collector.store.migrate import head_revision

        print(_("courtguard-collector {version} (database schema {head})").format(
            version=__version__, head=head_revision()))
        parser.exit()


def _settings(args: argparse.Namespace) -> CollectorSettings:
    overrides: dict[str, Any] = {
        "data_dir": args.data_dir, "database_url": args.database_url,
        "listen_host": getattr(args, "host", None), "listen_port": getattr(args, "port", None),
    }
    return load_settings(args.config, **overrides)


def _common_options(default: Any) -> argparse.ArgumentParser:
    """Options every subcommand takes, before or after its name.

    Subcommands default to SUPPRESS so they do not overwrite a value given before
    the subcommand; each call makes new Action objects, which parents share.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=default,
                        help=_("TOML settings file (default: $COURTGUARD_COLLECTOR_CONFIG or "
                               "/etc/courtguard/collector.toml)"))
    common.add_argument("--data-dir", type=Path, default=default,
                        help=_("data directory (overrides data_dir)"))
    common.add_argument("--database-url", default=default,
                        help=_("sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"))
    return common


def build_parser() -> argparse.ArgumentParser:
    CATALOGUE.speak_for_argparse()
    common = _common_options(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="courtguard-collector", description=_("courtguard central collector"),
        parents=[_common_options(None)],
    )
    parser.add_argument("--version", action=_VersionAction,
                        help=_("print the version and database schema head, then exit"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title=_("commands"))
    # The order here is the order ``--help`` lists the groups in.
    add_service_commands(sub, common)
    add_token_commands(sub, common)
    add_agent_commands(sub, common)
    add_host_commands(sub, common)
    add_policy_commands(sub, common)
    add_release_commands(sub, common)
    add_user_commands(sub, common)
    add_apikey_commands(sub, common)
    probe_responder.add_parser(sub)
    add_alerting_commands(sub, common)
    add_patrol_commands(sub, common)
    add_export_commands(sub, common)
    add_backup_commands(sub, common)
    _say_what_each_does(parser)
    return parser


def _say_what_each_does(parser: argparse.ArgumentParser) -> None:
    """Open every subcommand's ``--help`` with its line from the list above it.

    argparse shows a subcommand's ``help`` only in its parent's list; without a
    ``description`` the subcommand's own page would start at its options.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for listed in action._choices_actions:
                sub = action.choices[listed.dest]
                if sub.description is None:
                    sub.description = listed.help
                _say_what_each_does(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "token" and args.action == "create" and args.uses is not None \
            and args.uses < 1:
        print(_("error: --uses must be at least 1"), file=sys.stderr)
        return EXIT_USAGE
    try:
        if getattr(args, "standalone", False):  # needs no collector settings or store
            return int(args.func(args))
        settings = _settings(args)
        configure_logging(settings.log_format, settings.log_level)
        args.func(args, settings)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        failure = describe_failure(exc)
        if failure is None:
            raise
        print(_("error: {message}").format(message=failure.message), file=sys.stderr)
        if failure.hint:
            print(_("hint: {hint}").format(hint=failure.hint), file=sys.stderr)
        return failure.exit_code
    return 0
