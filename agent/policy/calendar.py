"""The ``calendar:`` section policies share: supplied years, overrides and key periods (重点时期).

The statutory calendar itself is ``agent.calendar_cn``; this is only how a
policy file writes its site's additions, and the cross-field check every
kind that carries one runs from its ``lint``.

``years`` carries whole years of the State Council's notice (国务院办公厅关于
某年部分节假日安排的通知): each holiday with its date range and the 调休
days worked in exchange. A year given here replaces the library's data for
that year and extends the calendar's coverage through its December 31, so a
site need not wait for a library release when the notice comes out.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from agent.calendar_cn import KeyPeriod, OfficialYear, WorkCalendar, make_calendar
from agent.policy.models import KeyPath, LintProblem, StrictModel

#: Longest statutory holiday span accepted; the longest so far (Spring Festival) is 9 days.
MAX_HOLIDAY_DAYS = 15


class KeyPeriodEntry(StrictModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> KeyPeriodEntry:
        if self.end < self.start:
            raise ValueError(f"key period {self.name}: end {self.end} is before start {self.start}")
        return self


class HolidayEntry(StrictModel):
    """One holiday of the notice: its name and the days off (both ends included)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True)]
    start: date
    end: date

    @model_validator(mode="after")
    def _span(self) -> HolidayEntry:
        if self.end < self.start:
            raise ValueError(f"holiday {self.name}: end {self.end} is before start {self.start}")
        if (self.end - self.start).days + 1 > MAX_HOLIDAY_DAYS:
            raise ValueError(
                f"holiday {self.name}: {self.start}..{self.end} is longer than "
                f"{MAX_HOLIDAY_DAYS} days; check the dates against the notice"
            )
        return self

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


class OfficialYearEntry(StrictModel):
    """A whole year's schedule as the State Council published it."""

    year: int = Field(ge=2000, le=2100)
    #: Where the dates come from, e.g. the notice's document number (国办发明电〔…〕…号).
    notice: Annotated[str, StringConstraints(max_length=200)] = ""
    holidays: list[HolidayEntry] = Field(min_length=1, max_length=20)
    workdays: list[date] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> OfficialYearEntry:
        """Dates in the year, names unique, no overlap between holidays or with workdays."""
        year = self.year
        names = [h.name for h in self.holidays]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{year}: holiday names listed more than once: {repeated}")
        for holiday in self.holidays:
            # A New Year holiday may begin in the last days of the year before (2023's
            # began on 2022-12-31); nothing else may leave the year.
            starts_before = holiday.start.year == year - 1 and holiday.start.month == 12
            if holiday.end.year != year or (holiday.start.year != year and not starts_before):
                raise ValueError(
                    f"{year}: holiday {holiday.name} {holiday.start}..{holiday.end} "
                    f"is not in {year}"
                )
        ordered = sorted(self.holidays, key=lambda h: h.start)
        for before, after in itertools.pairwise(ordered):
            if after.start <= before.end:
                raise ValueError(
                    f"{year}: holidays {before.name} ({before.start}..{before.end}) and "
                    f"{after.name} ({after.start}..{after.end}) overlap"
                )
        outside = sorted(d for d in self.workdays if d.year != year)
        if outside:
            raise ValueError(f"{year}: workdays not in {year}: {[str(d) for d in outside]}")
        twice = sorted({d for d in self.workdays if self.workdays.count(d) > 1})
        if twice:
            raise ValueError(f"{year}: workdays listed more than once: {[str(d) for d in twice]}")
        off = self.days_off()
        clash = sorted(d for d in self.workdays if d in off)
        if clash:
            raise ValueError(
                f"{year}: workdays inside a holiday: "
                f"{[f'{d} ({off[d]})' for d in clash]}"
            )
        return self

    def days_off(self) -> dict[date, str]:
        return {day: h.name for h in self.holidays for day in h.days()}

    def official_year(self) -> OfficialYear:
        return OfficialYear(self.year, self.days_off(), frozenset(self.workdays))


class CalendarSection(StrictModel):
    """Supplied years, site overrides of the statutory calendar and key periods (重点时期)."""

    timezone: Literal["Asia/Shanghai"] = "Asia/Shanghai"
    years: list[OfficialYearEntry] = Field(default_factory=list, max_length=10)
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)
    key_periods: list[KeyPeriodEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _years_once(self) -> CalendarSection:
        years = [y.year for y in self.years]
        repeated = sorted({y for y in years if years.count(y) > 1})
        if repeated:
            raise ValueError(f"calendar.years lists these years more than once: {repeated}")
        return self

    def work_calendar(self) -> WorkCalendar:
        return make_calendar(
            self.holidays,
            self.workdays,
            (KeyPeriod(p.name, p.start, p.end) for p in self.key_periods),
            (y.official_year() for y in self.years),
        )

    def lint(self, at: KeyPath) -> list[LintProblem]:
        """Dates listed both as holiday and workday; 调休 workdays that are not weekend days."""
        problems = [
            LintProblem(
                (*at, "workdays", self.workdays.index(day)),
                f"{day} is listed both as a holiday and as a workday",
                "keep the date in one of calendar.holidays and calendar.workdays",
            )
            for day in sorted(set(self.holidays) & set(self.workdays))
        ]
        for index, entry in enumerate(self.years):
            off = entry.days_off()
            for position, day in enumerate(self.workdays):
                if day in off:
                    problems.append(LintProblem(
                        (*at, "workdays", position),
                        f"{day} is a workday here but part of {off[day]} in calendar.years "
                        f"{entry.year}",
                        "remove the override, or correct the year's holiday dates",
                    ))
            for position, day in enumerate(entry.workdays):
                if day in self.holidays:
                    problems.append(LintProblem(
                        (*at, "years", index, "workdays", position),
                        f"{day} is a 调休 workday of {entry.year} but also in calendar.holidays",
                        "remove the date from calendar.holidays, or from the year's workdays",
                    ))
                if day.weekday() < 5:
                    problems.append(LintProblem(
                        (*at, "years", index, "workdays", position),
                        f"{day} is a weekday: 调休 workdays are the weekend days the notice "
                        "says are worked",
                        "copy the weekend dates the notice names after 上班",
                    ))
        return problems
