"""``courtguard-collector patrol``: one pass of the published-documents patrol, now.

The server patrols on its own every ``[patrol] interval_s`` when ``enabled``;
this runs one pass from the command line (a first look at a new source, or
after a batch was withdrawn) with the same settings, store and state, so the
server's next pass does not repeat it. It prints what the pass did.
"""

from __future__ import annotations

import argparse
import asyncio

from collector.errors import ConfigError
from collector.messages import _
from collector.settings import CollectorSettings


def cmd_patrol(args: argparse.Namespace, settings: CollectorSettings) -> None:
    from collector.api.documents import DocumentChecker
    from collector.cli.store import command_store
    from collector.patrol.runner import DocumentPatrol

    sources = [s for s in settings.patrol.sources if not args.source or s.name in args.source]
    if not sources:
        raise ConfigError(
            _("no source to patrol: configure sources under [patrol] in collector.toml")
            + (_(" (not found: {names})").format(names=_(", ").join(args.source))
               if args.source else "")
        )
    patrol_settings = settings.patrol.model_copy(update={"sources": sources})
    checker = DocumentChecker(settings.effective_policy_dir, settings.document_workers)
    try:
        with command_store(settings) as db:
            patrol = DocumentPatrol(db, checker, patrol_settings, settings.max_document_bytes)
            summary = asyncio.run(patrol.run_pass())
    finally:
        checker.close(wait=True)
    print(_(
        "patrol done: listed {listed}, unchanged {unchanged}, downloaded {downloaded}, "
        "checked {checked}; new alerts {alerted}, closed {closed}, withdrawn {gone}."
    ).format(listed=summary.listed, unchanged=summary.unchanged, downloaded=summary.downloaded,
             checked=summary.checked, alerted=summary.alerted, closed=summary.closed,
             gone=summary.gone))
    for error in summary.errors:
        print(_("  not finished: {error}").format(error=error))


def add_patrol_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                        common: argparse.ArgumentParser) -> None:
    patrol = sub.add_parser(
        "patrol", parents=[common],
        help=_("patrol published documents once now (已公开文书巡查; serve runs it periodically)"),
    )
    patrol.add_argument("--source", action="append", metavar="NAME",
                        help=_("only this [patrol] source (repeatable; default: all)"))
    patrol.set_defaults(func=cmd_patrol)
