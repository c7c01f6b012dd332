"""The court calendar: statutory holidays, make-up workdays, overrides, unknown years."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from agent.calendar_cn import (
    CoverageState,
    DayKind,
    KeyPeriod,
    OfficialYear,
    local_time,
    make_calendar,
)


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


# -- years supplied by policy, and coverage ---------------------------------------------------

LIBRARY_END = date(make_calendar().known_years()[-1], 12, 31)
NEXT = LIBRARY_END.year + 1


def supplied_year(year: int = NEXT) -> OfficialYear:
    """A placeholder schedule for the year after the library's data (not real notice dates)."""
    return OfficialYear(
        year,
        {date(year, 1, 1): "元旦", date(year, 5, 3): "劳动节", date(year, 5, 4): "劳动节"},
        frozenset({date(year, 5, 8)} if date(year, 5, 8).weekday() >= 5 else set()),
    )


def test_a_supplied_year_is_judged_by_its_schedule_not_by_weekday_guesses() -> None:
    """Listed days are holidays with their names; every other day is a plain weekday/weekend."""
    calendar = make_calendar(official_years=[supplied_year()])
    may_third = date(NEXT, 5, 3)
    assert calendar.day_kind(may_third) is DayKind.HOLIDAY
    assert calendar.holiday_name(may_third) == "劳动节"
    ordinary = date(NEXT, 3, 1)
    expected = DayKind.WEEKEND if ordinary.weekday() >= 5 else DayKind.WORKDAY
    assert calendar.day_kind(ordinary) is expected
    assert calendar.holiday_name(ordinary) is None


def test_a_supplied_year_replaces_the_library_for_that_year() -> None:
    """2026's National Day is no holiday when a supplied 2026 schedule leaves it out."""
    only_new_year = OfficialYear(2026, {date(2026, 1, 1): "元旦"}, frozenset())
    calendar = make_calendar(official_years=[only_new_year])
    assert calendar.day_kind(date(2026, 10, 1)) is DayKind.WORKDAY
    assert calendar.day_kind(date(2026, 1, 1)) is DayKind.HOLIDAY


def test_a_new_year_holiday_starting_in_december_belongs_to_the_next_year() -> None:
    """2023's New Year holiday began on 2022-12-31: that day is judged by the 2023 schedule."""
    year = OfficialYear(NEXT, {date(NEXT - 1, 12, 30): "元旦", date(NEXT, 1, 1): "元旦"},
                        frozenset())
    calendar = make_calendar(official_years=[year])
    assert calendar.day_kind(date(NEXT - 1, 12, 30)) is DayKind.HOLIDAY
    assert calendar.holiday_name(date(NEXT - 1, 12, 30)) == "元旦"


def test_coverage_ends_with_the_library_and_each_following_supplied_year() -> None:
    assert make_calendar().covered_until() == LIBRARY_END
    assert make_calendar(official_years=[supplied_year()]).covered_until() == date(NEXT, 12, 31)
    gap = make_calendar(official_years=[supplied_year(NEXT + 1)])
    assert gap.covered_until() == LIBRARY_END  # a missing year in between stops coverage


@pytest.mark.parametrize(
    ("today", "state", "days_left"),
    [
        (LIBRARY_END - timedelta(days=61), CoverageState.COVERED, 61),
        (LIBRARY_END - timedelta(days=60), CoverageState.EXPIRING, 60),
        (LIBRARY_END, CoverageState.EXPIRING, 0),
        (LIBRARY_END + timedelta(days=2), CoverageState.EXPIRED, -2),
    ],
)
def test_coverage_state_around_the_last_covered_day(
    today: date, state: CoverageState, days_left: int
) -> None:
    coverage = make_calendar().coverage(today)
    assert (coverage.state, coverage.days_left) == (state, days_left)
    if state is CoverageState.COVERED:
        assert coverage.notice == ""
    else:
        assert coverage.notice.startswith(f"节假日日历仅覆盖至 {LIBRARY_END.isoformat()}，")
        assert f"请在策略中补充 {NEXT} 年国务院办公厅公布的放假安排" in coverage.notice


def test_the_same_year_supplied_twice_or_contradicting_itself_is_refused() -> None:
    with pytest.raises(ValueError, match="more than once"):
        make_calendar(official_years=[supplied_year(), supplied_year()])
    clash = OfficialYear(NEXT, {date(NEXT, 1, 1): "元旦"}, frozenset({date(NEXT, 1, 1)}))
    with pytest.raises(ValueError, match="both holiday and workday"):
        make_calendar(official_years=[clash])
