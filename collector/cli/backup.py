"""``courtguard-collector backup OUT`` and ``restore IN``: the collector in one archive."""

from __future__ import annotations

import argparse
from pathlib import Path

from collector.backup import backup, describe_created, messages, restore
from collector.messages import _
from collector.settings import CollectorSettings
from collector.store.database import redact


def _config_in_effect(args: argparse.Namespace) -> Path:
    path, _explicit = CollectorSettings.config_path(getattr(args, "config", None))
    return path


def cmd_backup(args: argparse.Namespace, settings: CollectorSettings) -> None:
    done = backup(settings, Path(args.out), _config_in_effect(args))
    config = _(messages.BACKUP_CONFIG).format(path=done.config) if done.config else ""
    print(_(messages.BACKUP_DONE).format(
        path=done.path, size=done.size, database=done.database, revision=done.revision,
        files=done.files, data_dir=settings.data_dir, config=config))


def cmd_restore(args: argparse.Namespace, settings: CollectorSettings) -> None:
    done = restore(settings, Path(args.archive), _config_in_effect(args), args.force)
    if done.config_written:
        print(_(messages.CONFIG_WRITTEN).format(path=done.config_written))
    if done.config_kept:
        print(_(messages.CONFIG_KEPT).format(path=done.config_kept[0],
                                             restored=done.config_kept[1]))
    print(_(messages.RESTORE_DONE).format(
        files=done.files, data_dir=done.data_dir, database=done.database,
        url=redact(settings.database_url), revision=done.revision, head=done.head,
        created=describe_created(done.created), version=done.version))
    print(_(messages.RESTORE_NEXT).format(url=settings.url))


def add_backup_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                        common: argparse.ArgumentParser) -> None:
    made = sub.add_parser(
        "backup", parents=[common],
        help=_("write database, keys, TLS and settings to one archive (mode 0600: it holds keys)"))
    made.add_argument("out", metavar="OUT", help=_("new .tar.gz file to write"))
    made.set_defaults(func=cmd_backup)

    back = sub.add_parser(
        "restore", parents=[common],
        help=_("check a backup archive whole, then restore it into a fresh data dir and database"))
    back.add_argument("archive", metavar="IN", help=_("archive written by `backup`"))
    back.add_argument("--force", action="store_true",
                      help=_("overwrite a data dir or database that is not empty"))
    back.set_defaults(func=cmd_restore)
