"""The court calendar: statutory holidays, make-up workdays, overrides, unknown years."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from agent.calendar_cn import DayKind, KeyPeriod, local_time, make_calendar


def test_2026_statutory_days() -> None:
    """National Day and the Spring Festival are holidays; 2026-02-14 (Saturday) is 调休."""
    calendar = make_calendar()
    assert calendar.day_kind(date(2026, 10, 1)) is DayKind.HOLIDAY
    assert calendar.day_kind(date(2026, 2, 18)) is DayKind.HOLIDAY
    assert calendar.day_kind(date(2026, 2, 14)) is DayKind.MAKEUP_WORKDAY
    assert calendar.is_workday(date(2026, 2, 14))
    assert calendar.day_kind(date(2026, 3, 7)) is DayKind.WEEKEND
    assert calendar.day_kind(date(2026, 3, 2)) is DayKind.WORKDAY
    assert calendar.holiday_name(date(2026, 10, 1)) == "国庆节"


def test_unknown_year_falls_back_to_weekdays_and_says_so() -> None:
    calendar = make_calendar()
    last = calendar.known_years()[-1]
    monday = date(last + 1, 1, 1)
    while monday.weekday() != 0:
        monday += timedelta(days=1)
    assert calendar.day_kind(monday) is DayKind.WORKDAY_UNKNOWN_YEAR
    assert calendar.day_kind(monday + timedelta(days=5)) is DayKind.WEEKEND_UNKNOWN_YEAR
    assert "推定" in calendar.day_kind(monday).label


def test_overrides_win_and_contradictions_are_refused() -> None:
    calendar = make_calendar(holidays=[date(2026, 3, 2)], workdays=[date(2026, 3, 7)])
    assert calendar.day_kind(date(2026, 3, 2)) is DayKind.HOLIDAY
    assert calendar.day_kind(date(2026, 3, 7)) is DayKind.MAKEUP_WORKDAY
    with pytest.raises(ValueError, match="both"):
        make_calendar(holidays=[date(2026, 3, 2)], workdays=[date(2026, 3, 2)])


def test_key_periods_and_local_time() -> None:
    calendar = make_calendar(key_periods=[KeyPeriod("两会", date(2026, 3, 4), date(2026, 3, 12))])
    assert calendar.key_period(date(2026, 3, 12)) is not None
    assert calendar.key_period(date(2026, 3, 13)) is None
    utc_evening = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
    assert local_time(utc_evening).date() == date(2026, 3, 2)
    with pytest.raises(ValueError, match="naive"):
        local_time(datetime(2026, 3, 2, 9))
