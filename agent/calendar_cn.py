"""The working calendar of a Chinese court: statutory holidays, 调休 workdays, key periods.

Holidays and make-up workdays come from ``chinese-calendar`` (the State
Council's yearly notice, kept up to date by its maintainers); a site can add
its own per-year overrides, which win. A year the library does not know yet
(its data ends where the State Council has not yet published) falls back to
plain weekdays, and ``day_kind`` says so, so a finding can tell the reader
that the calendar was incomplete rather than silently guessing.

Times are judged in Asia/Shanghai; ``local_time`` converts any aware datetime.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")


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
class WorkCalendar:
    """Statutory calendar plus a site's overrides and key periods."""

    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    key_periods: tuple[KeyPeriod, ...] = field(default_factory=tuple)

    def day_kind(self, day: date) -> DayKind:
        """Classify ``day``; overrides first, then the library, then plain weekdays."""
        weekend = day.weekday() >= 5
        if day in self.extra_holidays:
            return DayKind.HOLIDAY
        if day in self.extra_workdays:
            return DayKind.MAKEUP_WORKDAY if weekend else DayKind.WORKDAY
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

    def known_years(self) -> range:
        """Years the library has data for (both ends included as a range)."""
        first, last = _library_years()
        return range(first, last + 1)


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
) -> WorkCalendar:
    """A calendar with a site's overrides; a date listed as both is refused."""
    extra_holidays, extra_workdays = frozenset(holidays), frozenset(workdays)
    both = sorted(extra_holidays & extra_workdays)
    if both:
        raise ValueError(f"dates listed both as holiday and as workday: {both}")
    return WorkCalendar(extra_holidays, extra_workdays, tuple(key_periods))
