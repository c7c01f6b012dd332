"""Errors the agent can meet, as one tree; each message says what happened and what to do.

    CourtguardError
    ├── ConfigError            settings file or environment unusable
    ├── PolicyError            a policy file is missing or invalid
    │   └── BundleRejected     a policy bundle refused (bad signature, older, other group...)
    ├── OrderRejected          an isolation order refused (bad signature, replayed, expired...)
    ├── EnrollmentError        enrollment refused or impossible
    │   └── CollectorUnreachable   the collector did not answer (or was busy): worth a retry
    ├── NotEnrolledError       the agent has no credentials yet
    └── SpoolError             the spool database cannot be opened or written
"""

from __future__ import annotations


class CourtguardError(Exception):
    """Base of every error the agent raises on purpose."""


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
