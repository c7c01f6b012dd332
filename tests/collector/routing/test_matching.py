"""Windows (named calendars) and route matching: pure, no store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import yaml

from agent.events import Severity
from collector.routing.matching import Context, alert_labels, matches, routes_for
from collector.routing.policy import AlertingPolicy, Matchers, Window

SHIPPED = Path(__file__).resolve().parents[3] / "policies" / "alerting.yaml"


def context(moment: str, **windows: Window) -> Context:
    data = yaml.safe_load(SHIPPED.read_text())
    policy = AlertingPolicy.model_validate(data)
    policy = policy.model_copy(update={"windows": {**policy.windows, **windows}})
    return Context(policy, policy.calendar.work_calendar(), datetime.fromisoformat(moment))


def test_office_hours_follow_the_statutory_calendar() -> None:
    office = "office_hours"
    # A make-up workday (调休, Saturday 2026-10-10) counts; the National Day holiday does not.
    ctx = context("2026-10-10T10:00:00+08:00")
    assert ctx.in_window(ctx.policy.windows[office])
    ctx = context("2026-10-02T10:00:00+08:00")
    assert not ctx.in_window(ctx.policy.windows[office]) and ctx.key_period
    ctx = context("2026-11-03T18:30:00+08:00")
    assert not ctx.in_window(ctx.policy.windows[office]) and not ctx.key_period


def test_a_night_window_spans_midnight_and_keeps_its_day() -> None:
    nights = Window.model_validate({"days": ["workday"], "start": "18:00", "end": "08:30"})
    # 02:00 on Wednesday belongs to Tuesday's night (a workday).
    assert context("2026-11-04T02:00:00+08:00", nights=nights).in_window(nights)
    # 02:00 on Monday belongs to Sunday's night: not a workday.
    assert not context("2026-11-02T02:00:00+08:00", nights=nights).in_window(nights)
    assert not context("2026-11-04T12:00:00+08:00", nights=nights).in_window(nights)


def test_routes_first_match_and_continue_and_windows() -> None:
    labels = {"kind": "account.tamper", "severity": "high", "rule_id": "accounts.tamper",
              "host": "ws-1", "host_group": "court-a", "account": "wb_zhang",
              "account_class": "maintenance", "fingerprint": "f", "key_period": "true"}
    ctx = context("2026-10-02T03:00:00+08:00")
    assert [r.name for r in routes_for(ctx, labels)] == ["copy-to-audit",
                                                         "critical-in-key-periods"]
    quiet = {**labels, "key_period": "false", "severity": "medium"}
    assert [r.name for r in routes_for(ctx, quiet)] == ["contractors"]
    data = yaml.safe_load(SHIPPED.read_text())
    data["routes"][0]["active_outside"] = ["office_hours"]
    policy = AlertingPolicy.model_validate(data)
    in_office = Context(policy, policy.calendar.work_calendar(),
                        datetime.fromisoformat("2026-11-03T10:00:00+08:00"))
    assert "copy-to-audit" not in [r.name for r in routes_for(in_office, labels)]


def test_a_holiday_supplied_in_policy_closes_office_hours() -> None:
    """A 2027 holiday from calendar.years (placeholder dates) is a holiday for duty windows;
    without the year, a Monday in 2027 passes as an (inferred) workday."""
    data = yaml.safe_load(SHIPPED.read_text())
    data["calendar"]["years"] = [{
        "year": 2027, "notice": "占位示例，非真实通知",
        "holidays": [{"name": "春节", "start": "2027-02-06", "end": "2027-02-12"}],
        "workdays": ["2027-02-14"],
    }]
    policy = AlertingPolicy.model_validate(data)
    monday = datetime.fromisoformat("2027-02-08T10:00:00+08:00")
    office = policy.windows["office_hours"]
    assert not Context(policy, policy.calendar.work_calendar(), monday).in_window(office)
    makeup_sunday = datetime.fromisoformat("2027-02-14T10:00:00+08:00")
    assert Context(policy, policy.calendar.work_calendar(), makeup_sunday).in_window(office)
    assert context(monday.isoformat()).in_window(office)


LABELS = {"kind": "account.tamper", "severity": "high", "rule_id": "accounts.tamper",
          "host": "ws-1", "host_group": "court-a", "account": "wb_zhang",
          "account_class": "maintenance", "fingerprint": "f", "key_period": "false"}


def test_every_matcher_term_must_hold() -> None:
    assert matches(Matchers(), LABELS)
    assert matches(Matchers(kinds=["account.tamper"], min_severity=Severity.MEDIUM), LABELS)
    assert not matches(Matchers(min_severity=Severity.CRITICAL), LABELS)
    assert not matches(Matchers(rules=["accounts.silent"]), LABELS)
    assert not matches(Matchers(host_groups=["court-b"]), LABELS)
    assert matches(Matchers(account_classes=["maintenance"], key_period=False), LABELS)
    assert not matches(Matchers(account_classes=["staff"]), LABELS)
    assert not matches(Matchers(key_period=True), LABELS)


def test_labels_of_an_alert_row() -> None:
    """An alert without an account or agent group has empty labels, not missing ones; the
    rule id falls back to the kind."""
    row = SimpleNamespace(kind="agent.silent", severity=Severity.HIGH.rank, rule_id=None,
                          host="ws-9", host_group=None, account=None, fingerprint="ab")
    labels = alert_labels(row, context("2026-10-02T03:00:00+08:00"))
    assert labels == {"kind": "agent.silent", "severity": "high", "rule_id": "agent.silent",
                      "host": "ws-9", "host_group": "", "account": "", "account_class": "",
                      "fingerprint": "ab", "key_period": "true"}
