"""Errors the agent can meet, as one tree; each message says what happened and what to do.

    CourtguardError
    ├── ConfigError            settings file or environment unusable
    ├── PolicyError            a policy file is missing or invalid
    │   └── BundleRejected     a policy bundle refused (bad signature, older, other group...)
    ├── OrderRejected          an isolation order refused (bad signature, replayed, expired...)
    ├── EnrollmentError        enrollment refused or impossible
    │   └── CollectorUnreachable   the collector did not answer (or was busy): worth a retry
    ├── NotEnrolledError       the agent has no credentials yet
    ├── SpoolError             the spool database cannot be opened or written
    └── AlreadyRunningError    another agent holds this data directory

``describe_failure`` is the one place that turns an error a person can cause into
the message, hint and exit code a command line prints (docs/cli.md, "Exit codes").
"""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass
from typing import Final

from agent.messages import _

#: Exit codes of ``courtguard-agent`` (docs/cli.md); 1 is ``scan``'s "not publishable".
EXIT_OK: Final = 0
EXIT_PROBLEM: Final = 2
EXIT_ALREADY_RUNNING: Final = 3
EXIT_INTERRUPTED: Final = 130


class CourtguardError(Exception):
    """Base of every error the agent raises on purpose; ``hint`` says what to do, if the
    message does not already."""

    hint: str | None = None

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        if hint is not None:
            self.hint = hint


class ConfigError(CourtguardError):
    pass


class PolicyError(CourtguardError):
    pass


class BundleRejected(PolicyError):
    """A bundle the agent will not apply; ``code`` is the reason_code its event carries."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class OrderRejected(CourtguardError):
    """An isolation order the agent will not carry out; ``code`` is its event's reason_code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class EnrollmentError(CourtguardError):
    pass


class CollectorUnreachable(EnrollmentError):
    """No answer, or a busy one: the same request may succeed later."""


class NotEnrolledError(CourtguardError):
    pass


class SpoolError(CourtguardError):
    pass


class AlreadyRunningError(CourtguardError):
    """Another agent process holds the data directory's lock."""


@dataclass(frozen=True)
class Failure:
    """What a command line prints for an error: a message, perhaps a hint, and its exit code."""

    message: str
    hint: str | None
    exit_code: int


def _permission_hint() -> str:
    return _("run it as root (sudo), or as the user that owns the agent's data directory")


def describe_failure(exc: BaseException) -> Failure | None:
    """The message for an error a person can cause; None for a bug (let the traceback show)."""
    if isinstance(exc, AlreadyRunningError):
        return Failure(str(exc), exc.hint, EXIT_ALREADY_RUNNING)
    if isinstance(exc, CourtguardError):
        return Failure(str(exc), exc.hint, EXIT_PROBLEM)
    if isinstance(exc, PermissionError):
        where = exc.filename or ""
        return Failure(_("permission denied: {path}").format(path=where).rstrip(": "),
                       _permission_hint(), EXIT_PROBLEM)
    if isinstance(exc, sqlite3.OperationalError) and (
            "unable to open" in str(exc) or "readonly" in str(exc)):
        return Failure(_("the spool database cannot be opened: {reason}").format(reason=exc),
                       _permission_hint(), EXIT_PROBLEM)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS, errno.ENOENT):
        return Failure(f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc.strerror),
                       None, EXIT_PROBLEM)
    return None
