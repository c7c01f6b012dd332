"""The shared ``calendar`` section: a whole year of the State Council notice, checked and linted.

The dates below are placeholders with the shape of a notice, not any real year's schedule.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

import collector.routing.policy  # noqa: F401 (registers alerting, which policy check reads)
from agent.calendar_cn import DayKind
from agent.policy.calendar import CalendarSection
from agent.policy.check import check_directory

SHIPPED = Path(__file__).resolve().parents[3] / "policies"


def year_2027(**changes: Any) -> dict[str, Any]:
    """A well-formed 2027 entry (placeholder dates); ``changes`` replace its keys."""
    entry: dict[str, Any] = {
        "year": 2027,
        "notice": "占位示例，非真实通知",
        "holidays": [
            {"name": "元旦", "start": "2027-01-01", "end": "2027-01-03"},
            {"name": "春节", "start": "2027-02-06", "end": "2027-02-12"},
        ],
        "workdays": ["2027-02-14"],  # a Sunday
    }
    entry.update(changes)
    return entry


def section(*years: dict[str, Any], **extra: Any) -> CalendarSection:
    return CalendarSection.model_validate({"years": list(years), **extra})


def test_a_supplied_year_feeds_the_work_calendar_and_extends_its_coverage() -> None:
    calendar = section(year_2027()).work_calendar()
    assert calendar.day_kind(date(2027, 2, 8)) is DayKind.HOLIDAY
    assert calendar.holiday_name(date(2027, 2, 8)) == "春节"
    assert calendar.day_kind(date(2027, 2, 14)) is DayKind.MAKEUP_WORKDAY
    assert calendar.day_kind(date(2027, 3, 1)) is DayKind.WORKDAY  # no "unknown year" guess
    assert calendar.covered_until() == date(2027, 12, 31)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (year_2027(holidays=[{"name": "国庆节", "start": "2028-10-01", "end": "2028-10-07"}]),
         "is not in 2027"),
        (year_2027(holidays=[{"name": "元旦", "start": "2026-11-30", "end": "2026-12-02"}]),
         "is not in 2027"),
        (year_2027(workdays=["2026-12-27"]), "workdays not in 2027"),
        (year_2027(holidays=[{"name": "春节", "start": "2027-02-06", "end": "2027-02-12"},
                             {"name": "元宵", "start": "2027-02-12", "end": "2027-02-13"}]),
         "overlap"),
        (year_2027(holidays=[{"name": "元旦", "start": "2027-01-01", "end": "2027-01-01"},
                             {"name": "元旦", "start": "2027-01-02", "end": "2027-01-02"}]),
         "names listed more than once"),
        (year_2027(workdays=["2027-02-07"]), "workdays inside a holiday"),
        (year_2027(workdays=["2027-02-14", "2027-02-14"]), "more than once"),
        (year_2027(holidays=[{"name": "", "start": "2027-01-01", "end": "2027-01-01"}]),
         "at least 1 character"),
        (year_2027(holidays=[{"name": "春节", "start": "2027-02-12", "end": "2027-02-06"}]),
         "before start"),
        (year_2027(holidays=[]), "at least 1 item"),
    ],
)
def test_a_malformed_year_is_refused(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        section(entry)


def test_a_new_year_holiday_may_start_in_the_preceding_december() -> None:
    """2023's 元旦 ran 2022-12-31..2023-01-02; the notice for a year can name such a range."""
    entry = year_2027(holidays=[{"name": "元旦", "start": "2026-12-31", "end": "2027-01-02"}],
                      workdays=[])
    assert section(entry).work_calendar().day_kind(date(2026, 12, 31)) is DayKind.HOLIDAY


def test_the_same_year_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="more than once"):
        section(year_2027(), year_2027())


def test_lint_flags_a_weekday_makeup_workday_and_contradicting_overrides() -> None:
    calendar = section(year_2027(workdays=["2027-02-15"]),  # a Monday
                       holidays=["2027-02-15"], workdays=["2027-02-08"])
    found = {(p.path, p.message.split(" ", 1)[1]) for p in calendar.lint(("calendar",))}
    assert (("calendar", "workdays", 0),
            "is a workday here but part of 春节 in calendar.years 2027") in found
    assert (("calendar", "years", 0, "workdays", 0),
            "is a 调休 workday of 2027 but also in calendar.holidays") in found
    assert any("is a weekday" in message for _, message in found)
    assert section(year_2027()).lint(("calendar",)) == []


def shipped_with_years(tmp_path: Path, kind: str, years: list[dict[str, Any]]) -> Path:
    data = yaml.safe_load((SHIPPED / f"{kind}.yaml").read_text())
    data["calendar"]["years"] = years
    tmp_path.mkdir()
    (tmp_path / f"{kind}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return tmp_path


@pytest.mark.parametrize("kind", ["accounts", "alerting"])
def test_policy_check_accepts_a_year_and_locates_a_bad_one(tmp_path: Path, kind: str) -> None:
    good = check_directory(shipped_with_years(tmp_path / "good", kind, [year_2027()]))
    assert good.issues == []
    bad = check_directory(shipped_with_years(
        tmp_path / "bad", kind, [year_2027(workdays=["2027-02-08"])]))
    assert [i.where for i in bad.issues] == ["calendar.years[0]"]
    assert "workdays inside a holiday" in bad.issues[0].message
    weekday = check_directory(shipped_with_years(
        tmp_path / "weekday", kind, [year_2027(workdays=["2027-02-15"])]))
    assert [(i.where, "is a weekday" in i.message) for i in weekday.issues] == [
        ("calendar.years[0].workdays[0]", True)]
