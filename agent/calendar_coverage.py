"""Warnings that the holiday calendar runs out, shared by the agent and the collector.

Every year runs out: the library's data ends where the State Council has not
yet published, and a year a policy supplies ends on its December 31. Both
processes check on a timer (``calendar_check_interval_s`` in their settings)
and report at most once per Shanghai day:

1. ``calendar_coverage`` takes the calendars in force and keeps the one that
   ends first (the day the first judgement falls back to plain weekdays);
2. ``CoverageWatch.due`` says whether today's report has been made already;
3. ``coverage_finding`` words it: ``<source>.calendar_expiring`` from
   ``EXPIRY_WARNING_DAYS`` before the last covered day, and
   ``<source>.calendar_expired`` after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Literal

from agent.calendar_cn import CalendarCoverage, CoverageState, WorkCalendar, local_time
from agent.events import CalendarCoverageEvidence, Finding, Severity

Source = Literal["agent", "collector"]

_SUBJECT: Final = {"agent": "终端代理", "collector": "采集服务器"}


def calendar_coverage(calendars: Iterable[WorkCalendar], now: datetime) -> CalendarCoverage:
    """The coverage of the calendar that ends first (the library alone when none is given)."""
    today = local_time(now).date()
    found = [c.coverage(today) for c in calendars] or [WorkCalendar().coverage(today)]
    return min(found, key=lambda c: c.covered_until)


@dataclass
class CoverageWatch:
    """Remembers what it reported today, so frequent checks make one event a day at most."""

    reported: tuple[date, CoverageState, date] | None = None

    def due(self, coverage: CalendarCoverage) -> bool:
        if coverage.state is CoverageState.COVERED:
            return False
        key = (coverage.today, coverage.state, coverage.covered_until)
        if key == self.reported:
            return False
        self.reported = key
        return True


def coverage_kind(source: Source, coverage: CalendarCoverage) -> str | None:
    """``<source>.calendar_expiring`` or ``<source>.calendar_expired``; None while covered."""
    if coverage.state is CoverageState.COVERED:
        return None
    return f"{source}.calendar_{coverage.state.value}"


def coverage_finding(
    source: Source, coverage: CalendarCoverage, severity: Severity, rule_id: str | None
) -> Finding | None:
    """The warning for ``coverage``; None while the calendar reaches far enough ahead."""
    kind = coverage_kind(source, coverage)
    if kind is None:
        return None
    if coverage.state is CoverageState.EXPIRED:
        headline = f"{_SUBJECT[source]}的节假日日历已过期"
    else:
        headline = f"{_SUBJECT[source]}的节假日日历即将到期（剩余 {coverage.days_left} 天）"
    return Finding(
        kind=kind,
        severity=severity,
        rule_id=rule_id,
        summary=f"{headline}：{coverage.notice}"[:500],
        evidence=CalendarCoverageEvidence(
            covered_until=coverage.covered_until,
            library_until=coverage.library_until,
            policy_years=list(coverage.policy_years),
            days_left=coverage.days_left,
        ).model_dump(mode="json"),
    )
