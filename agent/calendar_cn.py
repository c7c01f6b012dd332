"""The working calendar of a Chinese court: statutory holidays, 调休 workdays, key periods.

Holidays and make-up workdays come from ``chinese-calendar`` (the State
Council's yearly notice, kept up to date by its maintainers); a policy can
supply whole years itself (``official_years``: the State Council's notice
copied into the ``calendar`` section, which replaces the library for that
year) and per-date overrides, which win over both. A year neither knows
falls back to plain weekdays, and ``day_kind`` says so, so a finding can tell
the reader that the calendar was incomplete rather than silently guessing.

Every year runs out: ``coverage`` says up to which day the calendar is known
and whether that day is near (``EXPIRY_WARNING_DAYS``) or past, which the
agent, the collector and the console turn into a warning.

Times are judged in Asia/Shanghai; ``local_time`` converts any aware datetime.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
#: How many days before the calendar's last known day the warnings start.
EXPIRY_WARNING_DAYS: Final = 60


class DayKind(StrEnum):
    """What kind of day a date is for the court's working hours."""

    WORKDAY = "workday"
    MAKEUP_WORKDAY = "makeup_workday"  # 调休: a weekend day worked in exchange for a holiday
    WEEKEND = "weekend"
    HOLIDAY = "holiday"  # statutory holiday (法定节假日), including the days moved into it
    WORKDAY_UNKNOWN_YEAR = "workday_unknown_year"  # weekday in a year the library lacks
    WEEKEND_UNKNOWN_YEAR = "weekend_unknown_year"

    @property
    def is_workday(self) -> bool:
        return self in (DayKind.WORKDAY, DayKind.MAKEUP_WORKDAY, DayKind.WORKDAY_UNKNOWN_YEAR)

    @property
    def label(self) -> str:
        """The Chinese name shown in summaries."""
        return _LABELS[self]


_LABELS: Final = {
    DayKind.WORKDAY: "工作日",
    DayKind.MAKEUP_WORKDAY: "调休工作日",
    DayKind.WEEKEND: "周末",
    DayKind.HOLIDAY: "法定节假日",
    DayKind.WORKDAY_UNKNOWN_YEAR: "工作日（日历库无该年数据，按星期推定）",
    DayKind.WEEKEND_UNKNOWN_YEAR: "周末（日历库无该年数据，按星期推定）",
}


@dataclass(frozen=True)
class KeyPeriod:
    """A named span of dates (both ends included) of heightened duty, e.g. 重要会议期间."""

    name: str
    start: date
    end: date

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class OfficialYear:
    """One year's statutory schedule as the State Council's notice gives it.

    ``holidays`` maps every day off (the days moved into a holiday included)
    to the holiday's name; ``workdays`` are the 调休 days worked in exchange.
    Every other day of ``year`` is a plain weekday or weekend day.
    """

    year: int
    holidays: Mapping[date, str] = field(default_factory=dict, hash=False)
    workdays: frozenset[date] = frozenset()


@dataclass(frozen=True)
class WorkCalendar:
    """Statutory calendar, the years a policy supplies, a site's overrides and key periods."""

    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    key_periods: tuple[KeyPeriod, ...] = field(default_factory=tuple)
    official_years: tuple[OfficialYear, ...] = field(default_factory=tuple)

    def _official(self, year: int) -> OfficialYear | None:
        return next((y for y in self.official_years if y.year == year), None)

    def day_kind(self, day: date) -> DayKind:
        """Classify ``day``: overrides, a policy-supplied year, the library, plain weekdays."""
        weekend = day.weekday() >= 5
        if day in self.extra_holidays:
            return DayKind.HOLIDAY
        if day in self.extra_workdays:
            return DayKind.MAKEUP_WORKDAY if weekend else DayKind.WORKDAY
        official = self._official_covering(day)
        if official is not None:
            if day in official.holidays:
                return DayKind.HOLIDAY
            if day in official.workdays:
                return DayKind.MAKEUP_WORKDAY if weekend else DayKind.WORKDAY
            if day.year == official.year:
                return DayKind.WEEKEND if weekend else DayKind.WORKDAY
        try:
            workday = chinese_calendar.is_workday(day)
        except NotImplementedError:
            return DayKind.WEEKEND_UNKNOWN_YEAR if weekend else DayKind.WORKDAY_UNKNOWN_YEAR
        if workday:
            return DayKind.MAKEUP_WORKDAY if weekend else DayKind.WORKDAY
        if weekend and not chinese_calendar.get_holiday_detail(day)[1]:
            return DayKind.WEEKEND
        return DayKind.HOLIDAY

    def is_workday(self, day: date) -> bool:
        return self.day_kind(day).is_workday

    def holiday_name(self, day: date) -> str | None:
        """The Chinese name of the holiday ``day`` belongs to (or is made up for), if any."""
        if day in self.extra_holidays:
            return "本院日历设定的假日"
        official = self._official_covering(day)
        if official is not None and (day in official.holidays or day.year == official.year):
            return official.holidays.get(day)
        try:
            _, name = chinese_calendar.get_holiday_detail(day)
        except NotImplementedError:
            return None
        if not name:
            return None
        return str(_CHINESE_NAMES.get(str(name), name))

    def key_period(self, day: date) -> KeyPeriod | None:
        """The first key period covering ``day``."""
        return next((p for p in self.key_periods if p.covers(day)), None)

    def _official_covering(self, day: date) -> OfficialYear | None:
        """The supplied year ``day`` belongs to, or whose first holiday starts on ``day``.

        A New Year holiday can begin on the last days of the year before
        (2023's began on 2022-12-31), so the next year's schedule is asked too.
        """
        if day.month == 12:
            following = self._official(day.year + 1)
            if following is not None and day in following.holidays:
                return following
        return self._official(day.year)

    def known_years(self) -> range:
        """Years the library has data for (both ends included as a range)."""
        first, last = _library_years()
        return range(first, last + 1)

    def covered_until(self) -> date:
        """The last day whose kind is known: the library's data end, extended by every
        year the policy supplies in full right after it (a gap stops the extension)."""
        last_year = _library_years()[1]
        supplied = {y.year for y in self.official_years}
        while last_year + 1 in supplied:
            last_year += 1
        return date(last_year, 12, 31)

    def coverage(self, today: date) -> CalendarCoverage:
        """How far the calendar reaches as seen on ``today`` (Asia/Shanghai)."""
        return CalendarCoverage(
            covered_until=self.covered_until(),
            library_until=date(_library_years()[1], 12, 31),
            policy_years=tuple(sorted(y.year for y in self.official_years)),
            today=today,
        )


class CoverageState(StrEnum):
    """Whether the calendar still knows the days ahead."""

    COVERED = "covered"
    EXPIRING = "expiring"  # the last known day is at most EXPIRY_WARNING_DAYS away
    EXPIRED = "expired"  # past the last known day: days are judged by plain weekdays


@dataclass(frozen=True)
class CalendarCoverage:
    """How far a calendar reaches, seen on one day; the text people read about it."""

    covered_until: date
    library_until: date
    policy_years: tuple[int, ...]
    today: date

    @property
    def state(self) -> CoverageState:
        if self.today > self.covered_until:
            return CoverageState.EXPIRED
        if self.today >= self.covered_until - timedelta(days=EXPIRY_WARNING_DAYS):
            return CoverageState.EXPIRING
        return CoverageState.COVERED

    @property
    def days_left(self) -> int:
        """Days from today to the last covered day (negative once past it)."""
        return (self.covered_until - self.today).days

    @property
    def missing_year(self) -> int:
        return self.covered_until.year + 1

    @property
    def notice(self) -> str:
        """The Chinese sentence the console banner and the events show (empty when covered)."""
        state = self.state
        if state is CoverageState.COVERED:
            return ""
        ask = f"请在策略中补充 {self.missing_year} 年国务院办公厅公布的放假安排"
        if state is CoverageState.EXPIRED:
            return (
                f"节假日日历仅覆盖至 {self.covered_until.isoformat()}，此后的节假日和调休上班日"
                f"无法识别，目前按普通工作日和周末判断；{ask}"
            )
        return f"节假日日历仅覆盖至 {self.covered_until.isoformat()}，{ask}"


#: The library's holidays carry their Chinese name beside the English value.
_CHINESE_NAMES: Final = {h.value: h.chinese for h in chinese_calendar.Holiday}


def _library_years() -> tuple[int, int]:
    years = sorted({d.year for d in chinese_calendar.holidays})
    return years[0], years[-1]


def local_time(moment: datetime) -> datetime:
    """``moment`` in Asia/Shanghai; naive datetimes are refused (they hide their zone)."""
    if moment.utcoffset() is None:
        raise ValueError("a naive datetime has no zone; pass an aware one")
    return moment.astimezone(SHANGHAI)


def make_calendar(
    holidays: Iterable[date] = (),
    workdays: Iterable[date] = (),
    key_periods: Iterable[KeyPeriod] = (),
    official_years: Iterable[OfficialYear] = (),
) -> WorkCalendar:
    """A calendar with a site's overrides and supplied years; contradictions are refused."""
    extra_holidays, extra_workdays = frozenset(holidays), frozenset(workdays)
    both = sorted(extra_holidays & extra_workdays)
    if both:
        raise ValueError(f"dates listed both as holiday and as workday: {both}")
    years = tuple(official_years)
    repeated = sorted({y.year for y in years if sum(o.year == y.year for o in years) > 1})
    if repeated:
        raise ValueError(f"years supplied more than once: {repeated}")
    for year in years:
        clash = sorted(set(year.holidays) & year.workdays)
        if clash:
            raise ValueError(f"{year.year}: dates both holiday and workday: {clash}")
    return WorkCalendar(extra_holidays, extra_workdays, tuple(key_periods), years)
