"""``courtguard-collector agent list|revoke|group``: enrolled agents."""

from __future__ import annotations

import argparse

from agent.events import utcnow
from collector.cli.policy import group_name
from collector.cli.store import command_store
from collector.cli.table import print_table
from collector.messages import _
from collector.settings import CollectorSettings
from collector.store import agents as agent_store


def cmd_agent_list(_args: argparse.Namespace, settings: CollectorSettings) -> None:
    from collector.api.views import agent_view
    from collector.correlation.liveness import agent_status, load_silent_rule

    with command_store(settings) as db:
        rows = agent_store.list_agents(db)
    missed = load_silent_rule(settings.effective_policy_dir).missed_heartbeats
    now = utcnow()
    views = [
        agent_view(r, agent_status(r, now, missed, settings.default_heartbeat_interval_s))
        for r in rows
    ]
    print_table(
        [[v["id"], v["hostname"], v["group"], v["status"], v["last_seen_at"] or "-",
          v["agent_version"] or "-", str(v["max_seq"]), str(v["open_gaps"])] for v in views],
        ["ID", _("hostname"), _("group"), _("status"), _("last seen"), _("version"),
         _("max seq"), _("gaps")],
    )


def cmd_agent_revoke(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        changed = agent_store.revoke(db, args.agent_id, args.reason, utcnow())
    print((_("agent {id} revoked") if changed else _("agent {id} was already revoked")).format(
        id=args.agent_id))


def cmd_agent_group(args: argparse.Namespace, settings: CollectorSettings) -> None:
    from collector.store.policies import set_agent_group

    with command_store(settings) as db:
        previous = set_agent_group(db, args.agent_id, args.group)
    print(_("agent {id} moved from group {previous} to group {group}; it gets that group's "
            "policy at its next policy fetch").format(
        id=args.agent_id, previous=previous, group=args.group))


def add_agent_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                       common: argparse.ArgumentParser) -> None:
    agent = sub.add_parser("agent", help=_("enrolled agents")).add_subparsers(
        dest="action", required=True, metavar="ACTION")
    agent.add_parser("list", parents=[common], help=_("list agents")).set_defaults(
        func=cmd_agent_list)
    arevoke = agent.add_parser("revoke", parents=[common], help=_("revoke an agent's credentials"))
    arevoke.add_argument("agent_id", metavar="AGENT_ID")
    arevoke.add_argument("--reason", default="revoked by operator")
    arevoke.set_defaults(func=cmd_agent_revoke)
    agroup = agent.add_parser("group", parents=[common],
                              help=_("move an agent to another group (its policy follows)"))
    agroup.add_argument("agent_id", metavar="AGENT_ID")
    agroup.add_argument("group", type=group_name, metavar="GROUP")
    agroup.set_defaults(func=cmd_agent_group)
