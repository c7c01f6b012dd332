"""The collector's holiday calendar check: daily events, the console banner, supplied years."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from starlette.testclient import TestClient

from agent.events import Severity
from collector.app import create_app
from collector.calendar_monitor import CalendarMonitor
from collector.console import users
from collector.policy.current import CurrentPolicy
from collector.settings import CollectorSettings
from collector.store import agents as agent_store
from collector.store import migrate
from collector.store.database import Database
from collector.store.tables import alerts, events
from tests.collector.conftest import POLICIES
from tests.collector.console.conftest import PASSWORD, login

EXPIRING = "节假日日历仅覆盖至 2026-12-31，请在策略中补充 2027 年国务院办公厅公布的放假安排"
EXPIRED = ("节假日日历仅覆盖至 2026-12-31，此后的节假日和调休上班日按普通工作日和周末判断；"
           "请在策略中补充 2027 年国务院办公厅公布的放假安排")
MID_NOVEMBER = datetime.fromisoformat("2026-11-15T09:00:00+08:00")
LAST_DAY = datetime.fromisoformat("2026-12-31T23:00:00+08:00")
AFTER = datetime.fromisoformat("2027-01-02T09:00:00+08:00")


def with_2027(tmp_path: Path) -> Path:
    """A copy of the shipped policies whose alerting calendar supplies 2027 (placeholder dates)."""
    directory = tmp_path / "policies-2027"
    shutil.copytree(POLICIES, directory)
    for kind in ("alerting", "accounts"):
        path = directory / f"{kind}.yaml"
        data = yaml.safe_load(path.read_text())
        data["calendar"]["years"] = [{
            "year": 2027, "notice": "占位示例，非真实通知",
            "holidays": [{"name": "元旦", "start": "2027-01-01", "end": "2027-01-03"}],
        }]
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return directory


def calendar_events(db: Database) -> list[dict[str, object]]:
    with db.read() as conn:
        rows = conn.execute(select(events).where(events.c.kind.like("collector.calendar_%"))
                            .order_by(events.c.time)).all()
    return [dict(row._mapping) for row in rows]


def test_warning_once_a_day_across_processes(db: Database) -> None:
    """Checks every few seconds, and a second collector process, still make one event a day."""
    first = CalendarMonitor(db, CurrentPolicy(db, POLICIES, None), 15)
    other = CalendarMonitor(db, CurrentPolicy(db, POLICIES, None), 15)
    (made,) = first.check(MID_NOVEMBER)
    assert first.check(MID_NOVEMBER.replace(hour=10)) == []
    assert other.check(MID_NOVEMBER.replace(hour=11)) == []
    assert (made.kind, made.severity) == ("collector.calendar_expiring", Severity.MEDIUM)
    assert made.summary == f"采集服务器的节假日日历即将到期（剩余 46 天）：{EXPIRING}"
    assert len(first.check(LAST_DAY)) == 1
    (stored_first, stored_last) = calendar_events(db)
    assert stored_first["evidence"] == {"covered_until": "2026-12-31",
                                        "library_until": "2026-12-31",
                                        "policy_years": [], "days_left": 46}
    # calendar_events types each column as object; evidence is the stored JSON dict
    assert stored_last["evidence"]["days_left"] == 0  # type: ignore[index]  # a JSON dict
    with db.read() as conn:
        (count,) = conn.execute(select(alerts.c.count)
                                .where(alerts.c.kind == "collector.calendar_expiring")).one()
    assert count == 2  # one alert for the coming end, seen on two days


def test_past_the_last_day_is_expired_and_high(db: Database) -> None:
    monitor = CalendarMonitor(db, CurrentPolicy(db, POLICIES, None), 15)
    (made,) = monitor.check(AFTER)
    assert (made.kind, made.severity) == ("collector.calendar_expired", Severity.HIGH)
    assert "按普通工作日和周末判断" in made.summary
    assert monitor.check(AFTER) == []


def test_a_year_supplied_in_policy_silences_the_warning(db: Database, tmp_path: Path) -> None:
    monitor = CalendarMonitor(db, CurrentPolicy(db, with_2027(tmp_path), None), 15)
    assert monitor.check(MID_NOVEMBER) == [] and monitor.check(AFTER) == []
    monitor.clock = lambda: AFTER
    assert monitor.notice() is None
    assert calendar_events(db) == []


def test_the_collectors_own_row_is_no_agent(db: Database) -> None:
    """The row collector events belong to is not listed and nobody can sign in as it."""
    CalendarMonitor(db, CurrentPolicy(db, POLICIES, None), 15).check(AFTER)
    assert [a["id"] for a in agent_store.list_agents(db)] == []
    assert agent_store.authenticate(db, agent_store.COLLECTOR_SOURCE_ID, "") is None
    assert agent_store.authenticate(db, agent_store.COLLECTOR_SOURCE_ID, "-") is None


@pytest.fixture
def console(tmp_path: Path) -> tuple[CollectorSettings, Database]:
    settings = CollectorSettings(data_dir=tmp_path / "data", tls=False, policy_dir=POLICIES,
                                 console_login_rate_per_min=1000,
                                 database_url=f"sqlite:///{tmp_path / 'console.db'}")
    database = Database.from_settings(settings)
    migrate.upgrade(database)
    users.create_user(database, "li", "auditor", PASSWORD, datetime.now(MID_NOVEMBER.tzinfo))
    return settings, database


def pages_at(settings: CollectorSettings, db: Database, moment: datetime) -> list[str]:
    app = create_app(settings, db)
    app.state.calendar_monitor.clock = lambda: moment
    with TestClient(app) as client:
        assert login(client, "li").status_code == 303
        return [client.get(f"/console/{page}").text
                for page in ("alerts", "events", "agents", "reports", "policies", "audit")]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime.fromisoformat("2026-10-01T09:00:00+08:00"), None),
        (MID_NOVEMBER, EXPIRING),
        (LAST_DAY, EXPIRING),
        (AFTER, EXPIRED),
    ],
)
def test_banner_on_every_console_page(console: tuple[CollectorSettings, Database],
                                      moment: datetime, expected: str | None) -> None:
    for page in pages_at(*console, moment):
        assert ('id="calendar-notice"' in page) is (expected is not None)
        if expected is not None:
            assert expected in page


def test_no_banner_once_policy_supplies_the_year(console: tuple[CollectorSettings, Database],
                                                 tmp_path: Path) -> None:
    settings, db = console
    settings = settings.model_copy(update={"policy_dir": with_2027(tmp_path)})
    assert all('id="calendar-notice"' not in page for page in pages_at(settings, db, AFTER))


def test_banner_follows_a_policy_change_without_waiting_for_a_check(
        db: Database, tmp_path: Path) -> None:
    """A year added to the files, once CurrentPolicy has read them, takes the banner down."""
    directory = tmp_path / "policies"
    shutil.copytree(POLICIES, directory)
    current = CurrentPolicy(db, directory, None)
    monitor = CalendarMonitor(db, current, 3600, clock=lambda: AFTER)
    current.get()
    notice = monitor.notice()
    assert notice is not None and (notice.state, notice.missing_year) == ("expired", 2027)
    supplied = with_2027(tmp_path)
    for kind in ("alerting", "accounts"):
        shutil.copy(supplied / f"{kind}.yaml", directory / f"{kind}.yaml")
    current.get()  # what the router and the silent monitor do every few seconds
    assert monitor.notice() is None
