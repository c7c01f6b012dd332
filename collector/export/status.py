"""What ``courtguard-collector export status`` shows: each output's cursors, lag and last error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.export import cursor
from collector.export.config import OutputSettings
from collector.store import leases
from collector.store.database import Database


@dataclass(frozen=True)
class OutputStatus:
    name: str
    configured: bool
    type: str
    format: str
    target: str
    event_cursor: int | None
    alert_cursor: int | None
    lag_events: int | None
    lag_s: float | None
    sent: int
    failed: int
    last_sent_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    lagging_since: datetime | None
    owner: str | None

    def as_json(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {**self.__dict__, "last_sent_at": when(self.last_sent_at),
                "last_error_at": when(self.last_error_at),
                "lagging_since": when(self.lagging_since)}


def _target(output: OutputSettings) -> str:
    if output.type == "https-ndjson":
        return output.url or ""
    return f"{output.host}:{output.port}"


def _holder(holder: leases.Holder | None, now: datetime) -> str | None:
    if holder is None or holder.lease_until is None or holder.lease_until < now:
        return None
    return holder.owner


def output_statuses(db: Database, outputs: list[OutputSettings],
                    now: datetime) -> list[OutputStatus]:
    """Configured outputs first (in configuration order), then rows no output uses any more."""
    rows = {row.name: row for row in cursor.cursor_rows(db)}
    holders = leases.holders(db)
    result: list[OutputStatus] = []
    configured = {output.name: output for output in outputs}
    for name in [*configured, *sorted(set(rows) - set(configured))]:
        output, row = configured.get(name), rows.get(name)
        lag = cursor.measure_lag(db, row.event_cursor, now) if row is not None else None
        result.append(OutputStatus(
            name=name, configured=output is not None,
            type=output.type if output else "-", format=output.format if output else "-",
            target=_target(output) if output else "-",
            event_cursor=row.event_cursor if row is not None else None,
            alert_cursor=row.alert_cursor if row is not None else None,
            lag_events=lag.events if lag else None, lag_s=lag.seconds if lag else None,
            sent=row.sent if row is not None else 0, failed=row.failed if row is not None else 0,
            last_sent_at=row.last_sent_at if row is not None else None,
            last_error=row.last_error if row is not None else None,
            last_error_at=row.last_error_at if row is not None else None,
            lagging_since=row.lagging_since if row is not None else None,
            owner=_holder(holders.get(cursor.lease_name(name)), now),
        ))
    return result
