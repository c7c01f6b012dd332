"""Listing filters from query parameters, shared by the pages and the JSON API.

The same names on both, so a page's URL and an API call filter alike:
``since``, ``until`` (ISO 8601; a time without a zone is UTC on the API and
Asia/Shanghai on the pages), ``kind``, ``severity``, ``min_severity``,
``status``, ``host``, ``account``, ``rule_id``, ``agent_id``, ``assignee``,
``q`` (free text). Repeated parameters and comma lists both work. Every value
is validated here, within ``collector.api.bounds`` (times, ids, no NUL in text),
and reaches SQL only as a bound parameter.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TypeVar

from starlette.datastructures import ImmutableMultiDict

from agent.events import KIND_PATTERN, RULE_ID_PATTERN, Severity
from collector.alerts.service import STATUSES, AlertFilter
from collector.api import bounds
from collector.store.audit import AuditFilter
from collector.store.events import EventFilter
from collector.store.filters import SortOrder, parse_sort

_SEVERITIES = ", ".join(s.value for s in Severity)


T = TypeVar("T")

#: Query parameters or form fields: starlette's multi-value mappings.
Params = ImmutableMultiDict[str, str]


class FilterError(ValueError):
    """One bad parameter: its name and what is wrong, for a 422 or a message on the page."""

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(f"{field}: {msg}")
        self.field = field
        self.msg = msg


def checked(name: str, check: Callable[[T], T], value: T) -> T:
    """``value`` passed through one of ``collector.api.bounds``' checks, as a FilterError."""
    try:
        return check(value)
    except ValueError as exc:
        raise FilterError(name, str(exc)) from None


def split(params: Params, name: str) -> list[str]:
    """Repeated parameters and comma lists alike: ``?kind=a&kind=b,c``."""
    return [part.strip() for value in params.getlist(name) for part in value.split(",")
            if part.strip()]


def text(params: Params, name: str, max_length: int, pattern: str | None = None) -> str | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    if len(value) > max_length:
        raise FilterError(name, f"longer than {max_length} characters")
    checked(name, bounds.check_text, value)
    if pattern is not None and not re.fullmatch(pattern, value):
        raise FilterError(name, f"{value!r} is not a valid {name}")
    return value


def severity(name: str, value: str) -> Severity:
    try:
        return Severity(value.strip().lower())
    except ValueError:
        raise FilterError(name, f"{value!r} is not one of {_SEVERITIES}") from None


def when(params: Params, name: str, naive_zone: tzinfo) -> datetime | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        # An unencoded "+08:00" arrives as " 08:00"; take it as the offset it was.
        head, _, offset = value.rpartition(" ")
        try:
            parsed = datetime.fromisoformat(f"{head}+{offset}")
        except ValueError:
            parsed = None
    if parsed is None:
        raise FilterError(name, f"{value!r} is not a date and time like 2026-11-27T08:30")
    return checked(name, bounds.check_time,
                   parsed.replace(tzinfo=naive_zone) if parsed.tzinfo is None else parsed)


def kinds(params: Params) -> list[str]:
    found = split(params, "kind")
    for value in found:
        if not re.fullmatch(KIND_PATTERN, value) or len(value) > 64:
            raise FilterError("kind", f"{value!r} is not an event kind like outreach.flow")
    return found


def statuses(params: Params) -> list[str]:
    found = split(params, "status")
    for value in found:
        if value not in STATUSES:
            raise FilterError("status", f"{value!r} is not one of {', '.join(STATUSES)}")
    return found


def _severities(params: Params) -> tuple[list[int], int | None]:
    ranks = [severity("severity", v).rank for v in split(params, "severity")]
    minimum = params.get("min_severity") or None
    return ranks, severity("min_severity", minimum).rank if minimum else None


def event_filter(params: Params, naive_zone: tzinfo = UTC) -> EventFilter:
    ranks, minimum = _severities(params)
    agent = text(params, "agent_id", 36)
    if agent is not None:
        try:
            agent = str(uuid.UUID(agent))
        except ValueError:
            raise FilterError("agent_id", f"{agent!r} is not an agent id") from None
    return EventFilter(
        kinds=kinds(params), severities=ranks, min_severity=minimum,
        host=text(params, "host", 253), agent_id=agent,
        rule_id=text(params, "rule_id", 128, RULE_ID_PATTERN),
        since=when(params, "since", naive_zone), until=when(params, "until", naive_zone),
        statuses=statuses(params), account=text(params, "account", 256),
        text=text(params, "q", 200),
    )


def alert_filter(params: Params, naive_zone: tzinfo = UTC) -> AlertFilter:
    ranks, minimum = _severities(params)
    return AlertFilter(
        statuses=statuses(params), severities=ranks, min_severity=minimum, kinds=kinds(params),
        host=text(params, "host", 253), account=text(params, "account", 256),
        rule_id=text(params, "rule_id", 128, RULE_ID_PATTERN),
        assignee=text(params, "assignee", 100),
        since=when(params, "since", naive_zone), until=when(params, "until", naive_zone),
        text=text(params, "q", 200),
    )


def audit_filter(params: Params, naive_zone: tzinfo = UTC) -> AuditFilter:
    return AuditFilter(
        actor=text(params, "actor", 100), action=text(params, "action", 64),
        object_type=text(params, "object_type", 32), object_id=text(params, "object_id", 64),
        since=when(params, "since", naive_zone), until=when(params, "until", naive_zone),
    )


def sort(params: Params, orders: dict[str, SortOrder], default: str) -> SortOrder:
    """``sort=host`` or ``sort=-host`` from the listing's whitelist; never SQL from the query."""
    value = params.get("sort")
    try:
        return parse_sort(value, orders, default)
    except ValueError:
        names = ", ".join(sorted(name for name in orders if not name.startswith("-")))
        raise FilterError("sort", f"{value!r} is not a sort order; use one of {names}, "
                                  "with a leading - for descending") from None


def limit(params: Params, default: int, maximum: int) -> int:
    value = params.get("limit")
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise FilterError("limit", f"{value!r} is not a number") from None
    if not 1 <= number <= maximum:
        raise FilterError("limit", f"must be between 1 and {maximum}")
    return number


def ids(values: Sequence[str], name: str = "ids") -> list[int]:
    try:
        found = [int(v) for v in values]
    except ValueError:
        raise FilterError(name, "alert ids are numbers") from None
    for value in found:
        checked(name, bounds.check_id, value)
    if not found:
        raise FilterError(name, "choose at least one alert")
    if len(found) > 1000:
        raise FilterError(name, "at most 1000 alerts at once")
    return found
