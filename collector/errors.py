"""Errors the collector can meet, as one tree; each message says what happened and what to do.

    CollectorError
    ├── ConfigError            settings file or environment unusable
    ├── StoreError             the database cannot be reached, migrated or written
    ├── TLSError               TLS material cannot be made or read
    ├── NotFoundError          a token, agent or key named on the command line does not exist
    ├── RefusedError           enrollment or ingest refused (bad token, revoked agent); has a code
    ├── InvalidEventsError     events the store refuses by index (a seq the agent already used)
    ├── ExportError            a SIEM output did not take a batch (message in Chinese)
    ├── EvidenceError          an evidence upload or capture order refused; has status and code
    ├── BackupError            a backup cannot be written, or an archive is refused for restore
    └── ApiError               a request refused; carries the HTTP status and the ErrorBody code

``describe_failure`` is the one place that turns an error a person can cause into
what ``courtguard-collector`` prints and its exit code (docs/cli.md, "Exit codes").
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from collector.messages import _

#: Exit codes of ``courtguard-collector`` (docs/cli.md).
EXIT_OK: Final = 0
EXIT_PROBLEM: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


class CollectorError(Exception):
    """Base of every error the collector raises on purpose; ``hint`` says what to do, if the
    message does not already."""

    hint: str | None = None

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        if hint is not None:
            self.hint = hint


class ConfigError(CollectorError):
    pass


class StoreError(CollectorError):
    pass


class TLSError(CollectorError):
    pass


class NotFoundError(CollectorError):
    pass


class BackupError(CollectorError):
    """A backup or restore refused; the message says why and what to do."""


class ExportError(CollectorError):
    """A SIEM output refused or did not confirm a batch; the batch is sent again later."""


class EvidenceError(CollectorError):
    """An evidence upload step or capture order the store refuses; ``offset`` is where it stands."""

    def __init__(self, status: int, code: str, detail: str, offset: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.offset = offset


class ApiError(CollectorError):
    """A refused request: the handler turns it into an ``ErrorBody`` response."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})


class RefusedError(CollectorError):
    """A store operation refused for a reason the caller reports: ``code`` is the ErrorBody code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class InvalidEventsError(CollectorError):
    """Events of a batch the store refuses: ``items`` are ErrorBody errors with their index."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(items)} events refused")
        self.items = items


@dataclass(frozen=True)
class Failure:
    """What the command line prints for an error: a message, perhaps a hint, its exit code."""

    message: str
    hint: str | None
    exit_code: int


def database_hint(reason: str = "") -> str:
    """What to check when the database cannot be opened or reached, or has no schema yet."""
    if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
        return _("the database has no courtguard schema yet: run `courtguard-collector init` "
                 "(or `migrate`) with the same settings first")
    return _("check database_url (or --database-url) and that the database server runs; for "
             "SQLite, that the data directory exists and this user may write it "
             "(`courtguard-collector init` makes it)")


def _database_failure(exc: Exception) -> Failure | None:
    try:
        from sqlalchemy.exc import OperationalError, ProgrammingError
    except ImportError:  # pragma: no cover - the collector always has SQLAlchemy
        return None
    if not isinstance(exc, OperationalError | ProgrammingError):
        return None
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    hint = database_hint(reason)
    if isinstance(exc, ProgrammingError) and hint == database_hint():
        return None  # a query the code got wrong: a bug, not the operator's doing
    return Failure(_("the database cannot be used: {reason}").format(reason=reason),
                   hint, EXIT_PROBLEM)


def describe_failure(exc: BaseException) -> Failure | None:
    """The message for an error a person can cause; None for a bug (let the traceback show)."""
    from agent.errors import CourtguardError

    if isinstance(exc, CollectorError | CourtguardError):
        return Failure(str(exc), exc.hint, EXIT_PROBLEM)
    if isinstance(exc, PermissionError):
        return Failure(
            _("permission denied: {path}").format(path=exc.filename or exc.strerror),
            _("run it as root (sudo), or as the user that owns the collector's data directory"),
            EXIT_PROBLEM)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return Failure(str(exc.strerror), _("free disk space, then run it again"), EXIT_PROBLEM)
    if isinstance(exc, Exception):
        return _database_failure(exc)
    return None
