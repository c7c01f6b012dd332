"""Which routes an alert takes: its labels, the policy's matchers and time windows.

Pure: no store, no clock of its own. ``Context`` is what one router pass knows
(the policy, the work calendar and the moment); the router, the grouping and
the escalation code all ask it whether a window is active now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agent.calendar_cn import WorkCalendar, local_time
from agent.events import Severity
from collector.routing.policy import AlertingPolicy, Matchers, Route, Window


@dataclass(frozen=True)
class Context:
    """What one pass knows: the policy, the calendar and the moment."""

    policy: AlertingPolicy
    calendar: WorkCalendar
    now: datetime
    accounts: Any = None  # the accounts policy, for account classes

    @property
    def key_period(self) -> bool:
        return self.calendar.key_period(local_time(self.now).date()) is not None

    def in_window(self, window: Window) -> bool:
        local = local_time(self.now)
        day = local.date()
        if window.start is not None and window.end is not None:
            clock = local.time()
            if window.end <= window.start:  # spans midnight: early hours belong to yesterday
                if clock < window.end:
                    day -= timedelta(days=1)
                elif clock < window.start:
                    return False
            elif not window.start <= clock < window.end:
                return False
        if window.days and self.calendar.day_kind(day) not in window.days:
            return False
        return not (window.key_period is not None and window.key_period != self.key_period)

    def active(self, inside: list[str], outside: list[str]) -> bool:
        windows = self.policy.windows
        if inside and not any(self.in_window(windows[name]) for name in inside):
            return False
        return not any(self.in_window(windows[name]) for name in outside)


def matches(matchers: Matchers, labels: Mapping[str, str]) -> bool:
    if matchers.kinds and labels["kind"] not in matchers.kinds:
        return False
    if matchers.rules and labels["rule_id"] not in matchers.rules:
        return False
    if matchers.min_severity is not None and (
        Severity(labels["severity"]).rank < matchers.min_severity.rank
    ):
        return False
    if matchers.host_groups and labels["host_group"] not in matchers.host_groups:
        return False
    if matchers.account_classes and labels["account_class"] not in matchers.account_classes:
        return False
    return matchers.key_period is None or (labels["key_period"] == "true") == matchers.key_period


def routes_for(ctx: Context, labels: Mapping[str, str]) -> list[Route]:
    """First match wins; a matched route with ``continue`` lets later routes match too."""
    chosen = []
    for route in ctx.policy.routes:
        if not ctx.active(route.active_in, route.active_outside):
            continue
        if matches(route.match, labels):
            chosen.append(route)
            if not route.continue_:
                break
    return chosen


def alert_labels(row: Any, ctx: Context) -> dict[str, str]:
    """The labels routes, inhibitions and silences match on, from an alert row with its
    agent's ``host_group``."""
    account_class = ""
    if row.account and ctx.accounts is not None:
        resolved = ctx.accounts.resolve(row.account)
        account_class = resolved.role_name if resolved is not None else "staff"
    return {
        "kind": row.kind,
        "severity": Severity.from_rank(row.severity).value,
        "rule_id": row.rule_id or row.kind,
        "host": row.host,
        "host_group": row.host_group or "",
        "account": row.account or "",
        "account_class": account_class,
        "fingerprint": row.fingerprint,
        "key_period": "true" if ctx.key_period else "false",
    }
