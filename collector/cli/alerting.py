"""``courtguard-collector duty ...`` and ``silence ...``: the roster and silences from a shell."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agent.calendar_cn import SHANGHAI, local_time
from agent.events import utcnow
from collector.cli.store import command_store as _db
from collector.cli.table import print_table
from collector.errors import CollectorError
from collector.messages import _
from collector.policy.current import CurrentPolicy
from collector.policy.signing import verifying_public_key
from collector.routing import duty, silences
from collector.routing.policy import POSITION_NAMES, AlertingPolicy
from collector.settings import CollectorSettings
from collector.store.audit import Actor

_DURATION = re.compile(r"^(\d+)([mhd])$")


class NoAlertingPolicy(CollectorError):
    pass


def _who(given: str | None) -> str:
    return (given or os.environ.get("SUDO_USER") or getpass.getuser() or "unknown")[:100]


def _policy(settings: CollectorSettings, db: Any) -> AlertingPolicy:
    policies = CurrentPolicy(
        db, settings.effective_policy_dir, verifying_public_key(settings.data_dir)
    ).get()
    document = policies.section("alerting") if policies is not None else None
    if not isinstance(document, AlertingPolicy):
        raise NoAlertingPolicy(_("no alerting policy in force (policies/alerting.yaml)"))
    return document


def _moment(text: str | None) -> datetime:
    if not text:
        return utcnow()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CollectorError(
            _("--at {text!r} is not an ISO 8601 time (e.g. 2026-10-02T03:00+08:00)")
            .format(text=text)) from None
    return value if value.utcoffset() is not None else value.replace(tzinfo=SHANGHAI)


def _print_staff(policy: AlertingPolicy, staff: duty.DutyStaff | None, heading: str) -> None:
    if staff is None:
        print(_("{heading}: no shift covers that time (check duty.shifts)").format(
            heading=heading))
        return
    info = duty.describe(policy, staff)
    slot = staff.slot
    period = (_(", key period: {name}").format(name=info["key_period"])
              if info["key_period"] else "")
    print(_("{heading}: {day} {shift} ({starts} to {ends} Beijing time{period})").format(
        heading=heading, day=slot.day, shift=slot.label, starts=f"{slot.starts_at:%m-%d %H:%M}",
        ends=f"{slot.ends_at:%m-%d %H:%M}", period=period))
    rows = []
    for position, person in staff.people.items():
        p = policy.people.get(person or "")
        rows.append([POSITION_NAMES[position], p.name if p else (person or _("(unassigned)")),
                     (p.mobile or "-") if p else "-", staff.sources[position]])
    print_table(rows, [_("position"), _("name"), _("mobile"), _("source")])


def cmd_duty_show(args: argparse.Namespace, settings: CollectorSettings) -> None:
    """``duty now`` and ``duty next``: the shift covering the moment, or the one after it."""
    with _db(settings) as db:
        policy = _policy(settings, db)
        find = duty.on_duty if args.action == "now" else duty.next_on_duty
        staff = find(policy, db, _moment(args.at))
        if args.json:
            print(json.dumps(duty.describe(policy, staff) if staff else None,
                             ensure_ascii=False, indent=2))
            return
        _print_staff(policy, staff, _("on duty now") if args.action == "now" else _("next shift"))


def cmd_duty_import(args: argparse.Namespace, settings: CollectorSettings) -> None:
    path: Path = args.file
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CollectorError(_("cannot read {path}: {reason}").format(
            path=path, reason=exc.strerror)) from None
    with _db(settings) as db:
        rows = duty.parse_roster_csv(raw, _policy(settings, db))
        count = duty.import_rows(db, rows, str(path), _who(args.by), utcnow())
    first, last = min(r.day for r in rows), max(r.day for r in rows)
    print(_("imported duty roster {name}: {count} rows ({first} to {last}); older rows for "
            "the same shift and position replaced").format(
        name=path.name, count=count, first=first, last=last))


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(
            _("{text!r} is not a duration like 30m, 4h or 2d").format(text=text))
    unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def _matcher(text: str) -> dict[str, str]:
    label, sep, value = text.partition("=")
    if not sep or not label or not value:
        raise argparse.ArgumentTypeError(
            _("{text!r} is not LABEL=VALUE (e.g. host=ws-it-*)").format(text=text))
    return {"label": label.strip(), "value": value.strip()}


def cmd_silence_add(args: argparse.Namespace, settings: CollectorSettings) -> None:
    now = utcnow()
    request = silences.parse_request({
        "matchers": args.match, "ends_at": (now + args.duration).isoformat(),
        "comment": args.comment,
    })
    with _db(settings) as db:
        silence = silences.create(db, request, Actor(_who(args.by), via="cli"), now)
    print(_("created silence {id}, until {until} (Beijing time)").format(
        id=silence.id, until=f"{local_time(silence.ends_at):%Y-%m-%d %H:%M}"))


def cmd_silence_list(args: argparse.Namespace, settings: CollectorSettings) -> None:
    now = utcnow()
    with _db(settings) as db:
        found = silences.list_silences(db, now, args.all)
    rows = [[s.id, ",".join(f"{m['label']}={m['value']}" for m in s.matchers),
             f"{local_time(s.ends_at):%m-%d %H:%M}", _("active") if s.active(now) else _("ended"),
             s.created_by, s.comment[:40]] for s in found]
    print_table(rows, ["ID", _("matchers"), _("ends (Beijing time)"), _("state"),
                       _("created by"), _("comment")])


def cmd_silence_expire(args: argparse.Namespace, settings: CollectorSettings) -> None:
    with _db(settings) as db:
        silences.expire(db, args.id, Actor(_who(args.by), via="cli"), utcnow(), args.reason)
    print(_("silence {id} ended early").format(id=args.id))


def add_alerting_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    duty_cmd = sub.add_parser("duty", help=_("the duty roster: who is on duty, import the sheet"))
    actions = duty_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("now", _("who is on duty now (or --at)")),
                       ("next", _("who takes the next shift"))):
        parser = actions.add_parser(name, parents=[common], help=text)
        parser.add_argument("--at", default=None, help=_("ISO time, e.g. 2026-10-02T03:00+08:00"))
        parser.add_argument("--json", action="store_true")
        parser.set_defaults(func=cmd_duty_show)
    imp = actions.add_parser("import", parents=[common],
                             help=_("import the duty office's CSV (日期,班次,岗位,姓名)"))
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.add_argument("--by", default=None, help=_("who imports (default: login name)"))
    imp.set_defaults(func=cmd_duty_import)

    silence = sub.add_parser("silence", help=_("silence alerts for a while, with a reason"))
    sactions = silence.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = sactions.add_parser("add", parents=[common], help=_("make a silence"))
    add.add_argument("--match", type=_matcher, action="append", required=True,
                     help=_("LABEL=VALUE, wildcards allowed; repeat for more (all must hold)"))
    add.add_argument("--duration", type=_duration, required=True, help=_("e.g. 30m, 4h, 2d"))
    add.add_argument("--comment", required=True, help=_("why (mandatory, audited)"))
    add.add_argument("--by", default=None)
    add.set_defaults(func=cmd_silence_add)
    lst = sactions.add_parser("list", parents=[common], help=_("list silences"))
    lst.add_argument("--all", action="store_true", help=_("include ended ones"))
    lst.set_defaults(func=cmd_silence_list)
    exp = sactions.add_parser("expire", parents=[common], help=_("end a silence now"))
    exp.add_argument("id")
    exp.add_argument("--reason", default="")
    exp.add_argument("--by", default=None)
    exp.set_defaults(func=cmd_silence_expire)
