"""What every ``courtguard-collector`` subcommand shares: the store for one command, tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from collector.settings import CollectorSettings
from collector.store.database import Database


@contextmanager
def command_store(settings: CollectorSettings) -> Iterator[Database]:
    """The store for one command, disposed of when the command is done."""
    db = Database.from_settings(settings, single_connection=True)
    try:
        yield db
    finally:
        db.dispose()


def print_table(rows: list[list[str]], header: list[str]) -> None:
    """Columns padded to their widest cell (by characters)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
