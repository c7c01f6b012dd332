"""``courtguard-collector``: set up, run and administer the collector.

One module per command group (``service``: init, serve, migrate, prune;
``tokens``, ``agents``, ``hosts`` (isolation), ``policy``, ``release`` (agent upgrades),
``users``, ``apikeys``,
``alerting``: duty, silences and test messages; ``patrol``: one pass of the published-documents
patrol; ``export``: SIEM outputs), each adding its subcommands to the parser
built here. Every subcommand reads the same settings (``--config``,
``COURTGUARD_COLLECTOR_*``); expected problems print one ``error:`` line and
exit 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.errors import CourtguardError
from collector import probe_responder
from collector.cli.agents import add_agent_commands
from collector.cli.alerting import add_alerting_commands
from collector.cli.apikeys import add_apikey_commands
from collector.cli.export import add_export_commands
from collector.cli.hosts import add_host_commands
from collector.cli.patrol import add_patrol_commands
from collector.cli.policy import add_policy_commands
from collector.cli.releases import add_release_commands
from collector.cli.service import add_service_commands
from collector.cli.tokens import add_token_commands
from collector.cli.users import add_user_commands
from collector.errors import CollectorError
from collector.logs import configure_logging
from collector.settings import CollectorSettings, load_settings


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
