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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class CollectorError(Exception):
    """Base of every error the collector raises on purpose."""


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
