"""``courtguard-collector host isolate|approve|lift|isolations``: host isolation (一键隔离).

The same rules as the console and the API (``collector.isolation.orders``):
each change is signed with the policy signing key and audited (via ``cli``,
actor ``--by`` or the login name). The agent picks the order up at its next
batch answer.
"""

from __future__ import annotations

import argparse
import getpass
import os

from agent.calendar_cn import SHANGHAI
from agent.events import utcnow
from agent.isolation.order import MAX_MINUTES
from collector.cli.store import command_store
from collector.cli.table import print_table
from collector.errors import CollectorError
from collector.isolation import orders
from collector.messages import _
from collector.policy.current import CurrentPolicy
from collector.policy.signing import load_signing_key, verifying_public_key
from collector.settings import CollectorSettings
from collector.store.audit import Actor
from collector.store.database import Database


class IsolationCommandError(CollectorError):
    pass


def _actor(given: str | None) -> Actor:
    name = (given or os.environ.get("SUDO_USER") or getpass.getuser() or "unknown")[:100]
    return Actor(name, via="cli")


def _reach(settings: CollectorSettings, db: Database) -> orders.Reach:
    policies = CurrentPolicy(
        db, settings.effective_policy_dir, verifying_public_key(settings.data_dir)).get()
    return orders.Reach.from_policy(policies.section("networks") if policies else None)


def _local(value: str | None) -> str:
    if not value:
        return "-"
    from datetime import datetime

    return datetime.fromisoformat(value).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _state_label(state: object) -> str:
    """An isolation's state as the terminal shows it (``orders.STATE_ZH`` is the console's)."""
    labels = {"pending": _("pending approval"), "active": _("isolated"),
              "expired": _("expired"), "lifted": _("lifted"), "cancelled": _("cancelled")}
    return labels.get(str(state), str(state))


def _said(found: dict[str, object]) -> str:
    if found["state"] == "pending":
        return _("isolation {id} submitted, waiting for another administrator's approval "
                 "(courtguard-collector host approve {id})").format(id=found["id"])
    if found["state"] == "active":
        return _("isolation {id} signed; the workstation applies it at its next report and it "
                 "lifts itself at {expires} (Beijing time)").format(
            id=found["id"], expires=_local(str(found["expires_at"])))
    if found["state"] == "lifted":
        return _("isolation {id} lifted; the lift order is signed").format(id=found["id"])
    return _("isolation {id}: {state}").format(id=found["id"], state=_state_label(found["state"]))


def _run(action: str, settings: CollectorSettings, args: argparse.Namespace) -> None:
    actor = _actor(args.by)
    with command_store(settings) as db:
        try:
            if action == "isolate":
                found = orders.request(
                    db, lambda: load_signing_key(settings.data_dir), args.agent_id,
                    args.minutes, args.reason, actor, utcnow(),
                    requires_approval=settings.isolation_requires_approval,
                    reach=_reach(settings, db))
            elif action == "approve":
                found = orders.approve(db, lambda: load_signing_key(settings.data_dir),
                                       args.isolation_id, actor, utcnow(), _reach(settings, db))
            else:
                found = orders.lift(db, lambda: load_signing_key(settings.data_dir),
                                    _isolation_id(db, args.target), actor, utcnow(), args.reason)
        except orders.IsolationRefused as exc:
            raise IsolationCommandError(exc.message) from None
    print(_said(found))


def _isolation_id(db: Database, target: str) -> int:
    """An isolation id, or an agent id whose open isolation is meant."""
    if target.isdigit():
        return int(target)
    open_rows = orders.list_isolations(db, utcnow(), target, open_only=True)
    if not open_rows:
        raise IsolationCommandError(
            _("workstation {target} has no pending or active isolation").format(target=target))
    return int(open_rows[0]["id"])


def cmd_isolate(args: argparse.Namespace, settings: CollectorSettings) -> None:
    _run("isolate", settings, args)


def cmd_approve(args: argparse.Namespace, settings: CollectorSettings) -> None:
    _run("approve", settings, args)


def cmd_lift(args: argparse.Namespace, settings: CollectorSettings) -> None:
    _run("lift", settings, args)


def cmd_isolations(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with command_store(settings) as db:
        found = orders.list_isolations(db, utcnow(), args.agent, open_only=not args.all)
    if not found:
        print(_("no pending or active isolations") if not args.all else _("no isolations"))
        return
    print_table(
        [[str(f["id"]), str(f["hostname"]), str(f["agent_id"]), _state_label(f["state"]),
          _local(f["expires_at"]), str(f["requested_by"]), str(f["approved_by"] or "-"),
          str(f["reason"])] for f in found],
        [_("number"), _("host"), _("agent ID"), _("state"), _("expires (Beijing time)"),
         _("requested by"), _("approved by"), _("reason")],
    )


def add_host_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                      common: argparse.ArgumentParser) -> None:
    host = sub.add_parser("host", help=_("host isolation (一键隔离)")).add_subparsers(
        dest="action", required=True, metavar="ACTION")
    isolate = host.add_parser("isolate", parents=[common],
                              help=_("isolate a host for a bounded time (signed order)"))
    isolate.add_argument("agent_id", metavar="AGENT")
    isolate.add_argument("--minutes", type=int, required=True,
                         help=_("how long, 1 to {max} minutes").format(max=MAX_MINUTES))
    isolate.add_argument("--reason", required=True)
    isolate.add_argument("--by", help=_("who asks (default: the login name)"))
    isolate.set_defaults(func=cmd_isolate)
    approve = host.add_parser("approve", parents=[common],
                              help=_("approve another admin's pending isolation"))
    approve.add_argument("isolation_id", type=int, metavar="ISOLATION_ID")
    approve.add_argument("--by", help=_("who approves (default: the login name)"))
    approve.set_defaults(func=cmd_approve)
    lift = host.add_parser("lift", parents=[common],
                           help=_("lift an isolation (or cancel a pending one)"))
    lift.add_argument("target", metavar="ISOLATION_ID|AGENT")
    lift.add_argument("--reason", default="")
    lift.add_argument("--by", help=_("who lifts (default: the login name)"))
    lift.set_defaults(func=cmd_lift)
    listing = host.add_parser("isolations", parents=[common],
                              help=_("pending and active isolations (--all: every one)"))
    listing.add_argument("--agent", help=_("only this agent's"))
    listing.add_argument("--all", action="store_true")
    listing.set_defaults(func=cmd_isolations)
