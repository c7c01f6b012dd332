"""``courtguard-collector export status``: where each SIEM output stands."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from agent.calendar_cn import local_time
from agent.events import utcnow
from collector.cli.store import command_store
from collector.cli.table import print_table
from collector.export.status import OutputStatus, output_statuses
from collector.messages import _
from collector.settings import CollectorSettings


def _local(value: object) -> str:
    return f"{local_time(value):%Y-%m-%d %H:%M:%S}" if isinstance(value, datetime) else "-"


def _lag(status: OutputStatus) -> str:
    if status.lag_events is None or status.lag_s is None:
        return _("not started")
    if status.lag_events == 0:
        return _("no backlog")
    return _("{events} events, oldest waiting {seconds} s").format(
        events=status.lag_events, seconds=f"{status.lag_s:.0f}")


def cmd_export_status(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        statuses = output_statuses(db, list(settings.export.outputs), utcnow())
    if args.json:
        print(json.dumps([s.as_json() for s in statuses], ensure_ascii=False, indent=2))
        return
    if not statuses:
        print(_("no SIEM outputs configured ([[export.outputs]] in collector.toml)"))
        return
    rows = [[
        s.name + ("" if s.configured else _(" (no longer configured)")), s.type, s.format, s.target,
        "-" if s.event_cursor is None else str(s.event_cursor),
        "-" if s.alert_cursor is None else str(s.alert_cursor),
        _lag(s), str(s.sent), str(s.failed), _local(s.last_sent_at),
    ] for s in statuses]
    print_table(rows, [_("output"), _("type"), _("format"), _("receiver"), _("event cursor"),
                       _("alert cursor"), _("backlog"), _("sent"), _("failed batches"),
                       _("last sent (Beijing time)")])
    for s in statuses:
        if s.lagging_since is not None:
            print(_("{name}: backlog over the threshold since {since} (alert raised)").format(
                name=s.name, since=_local(s.lagging_since)))
        if s.last_error:
            print(_("{name} last error ({at}): {error}").format(
                name=s.name, at=_local(s.last_error_at), error=s.last_error))


def add_export_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                        common: argparse.ArgumentParser) -> None:
    export = sub.add_parser("export", help=_("SIEM outputs")).add_subparsers(
        dest="action", required=True, metavar="ACTION")
    status = export.add_parser("status", parents=[common],
                               help=_("each output's cursor, lag and last error"))
    status.add_argument("--json", action="store_true", help=_("machine-readable"))
    status.set_defaults(func=cmd_export_status)
