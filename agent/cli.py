"""``courtguard-agent``: run the daemon, enroll, show status, write test events, scan documents.

Expected failures print a message and a hint to stderr and exit with the code
``agent.errors.describe_failure`` gives (docs/cli.md); a traceback means a bug.
Imports happen inside each command so ``status`` stays quick and ``run`` loads
only what the daemon needs. Words a person reads go through ``_`` (gettext).
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.errors import EXIT_INTERRUPTED, describe_failure
from agent.messages import CATALOGUE, _

SEVERITIES = ("info", "low", "medium", "high", "critical")
TEST_EVENTS_PER_TRANSACTION = 500


#: Modules the daemon never uses that its libraries import whenever they are installed:
#: httpcore imports trio (its trio backend) beside anyio, though the daemon runs on asyncio
#: only. The development virtualenv has trio (selenium brings it), the package does not;
#: hidden, they cost the daemon nothing where they happen to be installed.
DAEMON_NEVER_IMPORTS = ("trio",)


def hide_unused_modules() -> None:
    """Make ``DAEMON_NEVER_IMPORTS`` unimportable in this process (the daemon's, only).

    A ``None`` in ``sys.modules`` makes ``import`` raise ImportError, which the
    libraries take as "not installed". Not for a process that may want them
    (the test runner's browser tests use trio through selenium).
    """
    for name in DAEMON_NEVER_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "import fails"


#: ``mallopt``'s parameter for the most malloc arenas (glibc's malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8


def one_malloc_arena() -> bool:
    """Let every thread of this process allocate from glibc's main arena; False elsewhere.

    glibc gives each thread that allocates an arena of its own (up to eight per core).
    The daemon's threads (readers, observers, the thread pool) mostly sleep; their arenas
    and the free space left in each cost about half a megabyte of idle RSS
    (bench/agent_footprint.py) for a speed an idle agent does not need. It applies to
    arenas made afterwards, so it is called before the first thread starts.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_ARENA_MAX, 1))


def _run(args: argparse.Namespace) -> int:
    import asyncio

    one_malloc_arena()
    hide_unused_modules()

    from agent.daemon import Daemon
    from agent.instance_lock import hold_data_dir
    from agent.logging import configure_logging
    from agent.preseed import enroll_from_preseed
    from agent.settings import load_settings

    settings = load_settings(args.config)
    lock = hold_data_dir(settings.data_dir)
    try:
        configure_logging(settings.log_level, settings.log_format)
        enroll_from_preseed(settings)
        return asyncio.run(Daemon(settings).run())
    finally:
        lock.close()


def _enroll(args: argparse.Namespace) -> int:
    from agent.enrollment import credentials_path, enroll
    from agent.settings import load_settings

    settings = load_settings(args.config)
    credentials = enroll(args.collector, args.token, Path(args.ca) if args.ca else None, settings)
    print(
        _("enrolled as agent {agent_id} (group {group}); credentials in {path}. "
          "Start or restart the agent: systemctl restart courtguard-agent").format(
            agent_id=credentials.agent_id, group=credentials.group,
            path=credentials_path(settings.data_dir))
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from agent.enrollment import load_credentials
    from agent.errors import NotEnrolledError
    from agent.settings import load_settings
    from agent.spool import Spool, SpoolStats

    settings = load_settings(args.config)
    credentials: Any = None
    not_enrolled: str | None = None
    try:
        credentials = load_credentials(settings.data_dir)
    except NotEnrolledError as exc:
        not_enrolled = str(exc)
    stats = SpoolStats(max_bytes=settings.spool_max_bytes)
    if settings.spool_path.exists():
        with Spool(
            settings.spool_path,
            agent_id=None,
            host=settings.hostname,
            max_bytes=settings.spool_max_bytes,
        ) as spool:
            stats = spool.stats()
    report: dict[str, Any] = {
        "policy": _stored_policy(settings.data_dir, credentials),
        "enrolled": credentials is not None,
        "agent_id": str(credentials.agent_id) if credentials else None,
        "collector": credentials.collector_url if credentials else None,
        "group": credentials.group if credentials else None,
        "policy_key_algorithm": _pinned_algorithm(credentials),
        "spool": {
            "path": str(settings.spool_path),
            "depth": stats.depth,
            "bytes": stats.bytes,
            "max_bytes": stats.max_bytes,
            "dropped": stats.dropped,
            "dropped_total": stats.dropped_total,
            "quarantined": stats.quarantined,
            "next_seq": stats.next_seq,
        },
        "last_ship": {
            "at": stats.last_ship_at,
            "result": stats.last_ship_result,
            "error": stats.last_ship_error,
            "last_ok_at": stats.last_ship_ok_at,
        },
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    spool_info, ship = report["spool"], report["last_ship"]
    enrolled = _("yes") if credentials else _("no ({reason})").format(reason=not_enrolled)
    dropped = " ".join(f"{k}={v}" for k, v in stats.dropped.items() if v)
    rows = [
        (_("enrolled:"), enrolled),
        (_("agent id:"), report["agent_id"] or "-"),
        (_("collector:"), report["collector"] or "-"),
        (_("spool:"), _("{depth} events, {bytes} of {max_bytes} bytes ({path})").format(
            depth=stats.depth, bytes=stats.bytes, max_bytes=stats.max_bytes,
            path=spool_info["path"])),
        (_("dropped:"), f"{stats.dropped_total} {dropped}".rstrip()),
        (_("quarantined:"), str(stats.quarantined)),
        (_("last ship:"), _("{result} at {at}").format(result=ship["result"], at=ship["at"])
         if ship["result"] else _("never")),
        (_("policy:"), report["policy"]["summary"]),
        (_("policy key:"), report["policy_key_algorithm"] or _("none pinned")),
    ]
    if ship["error"]:
        rows.append((_("last error:"), ship["error"]))
    lines = [_label(label) + value for label, value in rows]
    print("\n".join(lines))
    return 0


def _label(text: str) -> str:
    """A status label padded to one column, counting a Chinese character as two."""
    width = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(1, 15 - width)


def _pinned_algorithm(credentials: Any) -> str | None:
    """The signature algorithm pinned at enrollment (ed25519 or sm2); None without a key."""
    from agent.signing import PublicKey, SignatureMismatch

    if credentials is None or not credentials.policy_key:
        return None
    try:
        return PublicKey.parse(credentials.policy_key).algorithm
    except SignatureMismatch as exc:
        return _("unusable ({reason})").format(reason=exc.reason)


def _stored_policy(data_dir: Path, credentials: Any) -> dict[str, Any]:
    """The last good bundle on disk, verified against the pinned key as the daemon would."""
    from agent.policy.client import last_good_path, read_last_good

    if credentials is None or not credentials.policy_key:
        return {"version": None, "summary": _("local policy_dir (no policy key pinned)")}
    if not last_good_path(data_dir).exists():
        return {"version": None,
                "summary": _("local policy_dir (no signed bundle received yet)")}
    verified = read_last_good(data_dir, credentials.policy_key, credentials.group, frozenset())
    if verified is None:
        return {"version": None,
                "summary": _("stored bundle does not verify; see the agent's log")}
    bundle = verified.bundle
    scope = (_("group {group}").format(group=bundle.group) if bundle.group
             else _("all groups"))
    return {
        "version": bundle.version,
        "group": bundle.group,
        "created_at": bundle.created_at.isoformat(),
        "summary": _("signed bundle version {version} ({scope}, published {at}Z by {author})")
        .format(version=bundle.version, scope=scope,
                at=f"{bundle.created_at:%Y-%m-%d %H:%M}", author=bundle.author),
    }


def _emit_test(args: argparse.Namespace) -> int:
    from agent.enrollment import load_credentials
    from agent.events import Finding, Severity, TestEvidence
    from agent.settings import load_settings
    from agent.spool import Spool

    settings = load_settings(args.config)
    credentials = load_credentials(settings.data_dir)
    severity = Severity(args.severity)
    padding = "x" * args.padding
    with Spool(
        settings.spool_path,
        agent_id=credentials.agent_id,
        host=settings.hostname,
        max_bytes=settings.spool_max_bytes,
    ) as spool:
        policy_version = spool.policy_version()
        first = last = 0
        for start in range(0, args.count, TEST_EVENTS_PER_TRANSACTION):
            stop = min(args.count, start + TEST_EVENTS_PER_TRANSACTION)
            findings = [
                Finding(
                    kind="agent.test",
                    severity=severity,
                    summary=f"测试事件 {i + 1}/{args.count}{'：' + args.note if args.note else ''}",
                    evidence=TestEvidence(note=args.note, index=i, padding=padding).model_dump(
                        mode="json"
                    ),
                )
                for i in range(start, stop)
            ]
            events = spool.append(findings, policy_version)
            first = first or events[0].seq or 0
            last = events[-1].seq or 0
    print(_("wrote {count} agent.test events (seq {first}..{last}) to {path}").format(
        count=args.count, first=first, last=last, path=settings.spool_path))
    return 0


def _scan(args: argparse.Namespace) -> int:
    if args.fix:
        from agent.detectors.documents.checker.fix import run_fix

        fixed: int = run_fix(args)
        return fixed
    from agent.detectors.documents.checker.command import run_scan

    scanned: int = run_scan(args)
    return scanned


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("{text!r} is not a whole number").format(text=text)) from None


def _positive(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(_("must be at least 1"))
    return value


def _padding(text: str) -> int:
    value = _whole_number(text)
    if not 0 <= value <= 8192:
        raise argparse.ArgumentTypeError(_("must be between 0 and 8192"))
    return value


def _note(text: str) -> str:
    if len(text) > 200:
        raise argparse.ArgumentTypeError(_("must be at most 200 characters"))
    return text


def build_parser() -> argparse.ArgumentParser:
    from agent.version import __version__

    CATALOGUE.speak_for_argparse()
    parser = argparse.ArgumentParser(
        prog="courtguard-agent",
        description=_("courtguard workstation agent: compliance checks reported to the collector"),
    )
    parser.add_argument("--version", action="version", version=f"courtguard-agent {__version__}",
                        help=_("print the version and exit"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     title=_("commands"))

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--config",
            metavar="P",
            help=_("agent.toml (default: $COURTGUARD_AGENT_CONFIG or /etc/courtguard/agent.toml)"),
        )
        return sub

    command("run", _("run the agent daemon in the foreground")).set_defaults(func=_run)

    enroll = command("enroll", _("enroll this workstation with the collector (one-time token)"))
    enroll.add_argument("--collector", required=True, metavar="URL",
                        help=_("the collector's address, e.g. https://collector.court.example:8443"))
    enroll.add_argument("--token", required=True, metavar="T",
                        help=_("enrollment token from `courtguard-collector token create`"))
    enroll.add_argument("--ca", metavar="FILE",
                        help=_("CA certificate of the collector (https)"))
    enroll.set_defaults(func=_enroll)

    status = command("status", _("show enrollment, spool and shipping state"))
    status.add_argument("--json", action="store_true", help=_("machine-readable output"))
    status.set_defaults(func=_status)

    emit = command("emit-test", _("write agent.test events into the spool to check the pipeline"))
    emit.add_argument("--count", type=_positive, default=1, metavar="N",
                      help=_("how many events (default 1)"))
    emit.add_argument("--severity", choices=SEVERITIES, default="info", metavar="S",
                      help=_("one of info, low, medium, high, critical (default info)"))
    emit.add_argument("--note", type=_note, default="", metavar="TEXT",
                      help=_("text carried in every event"))
    emit.add_argument("--padding", type=_padding, default=0, metavar="BYTES",
                      help=_("extra bytes per event, to test large batches"))
    emit.set_defaults(func=_emit_test)

    scan = command(
        "scan",
        _("check judgment documents before publication (exit 0 publishable, 1 not, 2 error)"),
    )
    scan.add_argument("paths", nargs="+", metavar="PATH",
                      help=_("files or directories (recursive)"))
    scan.add_argument("--profile", choices=("spc-2016", "spc-2024"),
                      help=_("default: the policy's"))
    scan.add_argument("--json", action="store_true", help=_("one JSON object per document"))
    scan.add_argument("--policy-dir", metavar="DIR", help=_("policies (default: agent.toml's)"))
    scan.add_argument("--jobs", type=_positive, metavar="N",
                      help=_("worker processes (all cores)"))
    scan.add_argument("--fix", action="store_true", help=_("write a corrected copy to -o"))
    scan.add_argument("-o", "--output", metavar="OUT", help=_("where --fix writes the copy"))
    scan.set_defaults(func=_scan)

    # Started by the agent itself (agent.upgrade.client), not by people: no help line.
    apply = commands.add_parser("upgrade-apply")
    apply.add_argument("--data-dir", required=True, type=Path)
    apply.add_argument("--package", required=True, type=Path)
    apply.add_argument("--rollback", required=True, type=Path)
    apply.add_argument("--version", required=True)
    apply.add_argument("--running", required=True)
    apply.add_argument("--sha256", required=True)
    apply.add_argument("--service", required=True)
    apply.add_argument("--timeout", required=True, type=float)
    apply.add_argument("--install", action="append", required=True)
    apply.set_defaults(func=_upgrade_apply)
    return parser


def _upgrade_apply(args: argparse.Namespace) -> int:
    from agent.upgrade.upgrader import UpgradePlan, apply

    plan = UpgradePlan(args.data_dir, tuple(args.install), args.service, args.timeout)
    return apply(plan, args.package, args.rollback, args.version, args.running, args.sha256)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        failure = describe_failure(exc)
        if failure is None:
            raise
        print(_("courtguard-agent: {message}").format(message=failure.message), file=sys.stderr)
        if failure.hint:
            print(_("  hint: {hint}").format(hint=failure.hint), file=sys.stderr)
        return failure.exit_code
    return result


if __name__ == "__main__":
    sys.exit(main())
