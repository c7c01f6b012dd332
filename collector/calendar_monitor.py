"""The collector's holiday calendar check: ``collector.calendar_expiring`` / ``_expired`` events.

The alert router judges duty windows and key periods by the ``calendar`` of
the policy the collector acts on (``CurrentPolicy``). Every
``calendar_check_interval_s``:

1. take the calendars that policy carries (``alerting`` and ``accounts``)
   and, with ``agent.calendar_coverage``, the day the first of them ends;
2. from ``EXPIRY_WARNING_DAYS`` before that day insert one event a day, whose
   id is derived from the Shanghai day, the state and the last covered day,
   so collector processes sharing PostgreSQL cannot make it twice; an
   in-process ``CoverageWatch`` spares the store the attempt after the first;
3. keep the coverage for the console banner (``notice``), which reads no
   store: it derives the coverage again only when ``CurrentPolicy`` holds a
   different policy set than the one it was derived from.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import structlog

from agent.calendar_cn import CalendarCoverage, CoverageState, local_time
from agent.calendar_coverage import CoverageWatch, calendar_coverage, coverage_finding
from agent.events import Event, Severity, utcnow
from agent.policy.calendar import CalendarSection
from agent.policy.loader import PolicySet
from collector.own_events import store_collector_event
from collector.periodic import run_periodically
from collector.policy.current import CurrentPolicy
from collector.store.database import Database
from collector.store.leases import LeaseKeeper

log = structlog.get_logger("collector.calendar")

#: Namespace of the deterministic ids of the collector's calendar events.
CALENDAR_NAMESPACE: Final = uuid.UUID("0b6f4c2e-8d7a-5e31-a9c4-1f2e3d4c5b6a")
SEVERITY: Final = {CoverageState.EXPIRING: Severity.MEDIUM, CoverageState.EXPIRED: Severity.HIGH}


@dataclass(frozen=True)
class BannerNotice:
    """What the console shows on every page while the calendar is near its end or past it."""

    state: str
    covered_until: str
    missing_year: int


class CalendarMonitor:
    """Runs the check on a timer; ``check`` alone is what tests and one-shot callers use."""

    def __init__(self, db: Database, policy: CurrentPolicy, interval_s: float,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.policy = policy
        self.interval_s = interval_s
        self.clock = clock
        self.watch = CoverageWatch()
        self.last: CalendarCoverage | None = None
        self._derived_from: PolicySet | None = None

    def coverage(self, now: datetime) -> CalendarCoverage:
        """How far the collector's calendar reaches today (the library alone without policy)."""
        return self._coverage_of(self.policy.get(), now)

    def _coverage_of(self, policies: PolicySet | None, now: datetime) -> CalendarCoverage:
        documents = policies.documents.values() if policies is not None else ()
        sections = (getattr(doc, "calendar", None) for doc in documents)
        calendars = [s.work_calendar() for s in sections if isinstance(s, CalendarSection)]
        self.last = calendar_coverage(calendars, now)
        self._derived_from = policies
        return self.last

    def check(self, now: datetime) -> list[Event]:
        """One pass; returns the event this process made (none, or one a day)."""
        coverage = self.coverage(now)
        if not self.watch.due(coverage):
            return []
        finding = coverage_finding("collector", coverage, SEVERITY[coverage.state], None)
        if finding is None:
            return []
        policies = self.policy.get()
        key = f"{coverage.today}/{coverage.state.value}/{coverage.covered_until}"
        event = store_collector_event(
            self.db, event_id=uuid.uuid5(CALENDAR_NAMESPACE, key), kind=finding.kind,
            severity=finding.severity, summary=finding.summary, evidence=finding.evidence,
            policy_version=policies.version if policies is not None else None, now=now,
        )
        if event is None:
            return []
        log.warning("holiday calendar runs out", state=coverage.state.value,
                    covered_until=coverage.covered_until.isoformat(), event_id=str(event.id))
        return [event]

    def notice(self) -> BannerNotice | None:
        """The banner for today; None while covered.

        Called while rendering, on the event loop: it reads no store. The policy
        is the set ``CurrentPolicy`` last read for any periodic part (the router
        asks every second, the silent monitor every few), so a published year
        takes the banner down without waiting for this monitor's next check.
        """
        now = self.clock()
        policies = self.policy.policies
        if self.last is None or policies is not self._derived_from:
            self._coverage_of(policies, now)
        assert self.last is not None  # noqa: S101 (set just above)
        today = local_time(now).date()
        current = CalendarCoverage(self.last.covered_until, self.last.library_until,
                                   self.last.policy_years, today)
        if current.state is CoverageState.COVERED:
            return None
        return BannerNotice(current.state.value, current.covered_until.isoformat(),
                            current.missing_year)

    async def run(self, leases: LeaseKeeper | None = None) -> None:
        """Check every ``interval_s`` until cancelled; a failed pass is logged, not fatal."""
        await run_periodically("holiday calendar check", lambda: self.check(self.clock()),
                               self.interval_s, leases=leases, lease="calendar-monitor")
