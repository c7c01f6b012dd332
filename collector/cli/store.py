"""The store one ``courtguard-collector`` subcommand works on, disposed of when it is done."""

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
