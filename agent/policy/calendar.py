"""The ``calendar:`` section policies share: per-year overrides and key periods (重点时期).

The statutory calendar itself is ``agent.calendar_cn``; this is only how a
policy file writes its site's additions, and the cross-field check every
kind that carries one runs from its ``lint``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from agent.calendar_cn import KeyPeriod, WorkCalendar, make_calendar
from agent.policy.models import KeyPath, LintProblem, StrictModel


class KeyPeriodEntry(StrictModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> KeyPeriodEntry:
        if self.end < self.start:
            raise ValueError(f"key period {self.name}: end {self.end} is before start {self.start}")
        return self


class CalendarSection(StrictModel):
    """Site overrides of the statutory calendar (per year) and key periods (重点时期)."""

    timezone: Literal["Asia/Shanghai"] = "Asia/Shanghai"
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)
    key_periods: list[KeyPeriodEntry] = Field(default_factory=list)

    def work_calendar(self) -> WorkCalendar:
        return make_calendar(
            self.holidays,
            self.workdays,
            (KeyPeriod(p.name, p.start, p.end) for p in self.key_periods),
        )

    def lint(self, at: KeyPath) -> list[LintProblem]:
        """A date listed both as a holiday and as a workday."""
        return [
            LintProblem(
                (*at, "workdays", self.workdays.index(day)),
                f"{day} is listed both as a holiday and as a workday",
                "keep the date in one of calendar.holidays and calendar.workdays",
            )
            for day in sorted(set(self.holidays) & set(self.workdays))
        ]
