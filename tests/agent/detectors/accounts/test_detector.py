"""Accounts detector behaviour beyond the shipped rule cases: repeats, state, exceptions."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from agent.detectors.accounts.detector import AccountsDetector
from agent.detectors.accounts.observations import AccountsObservation
from agent.detectors.accounts.policy import AccountsPolicy
from agent.events import Finding
from agent.policy.loader import load_policy_dir
from agent.registry import EVIDENCE_MODELS

REPO = Path(__file__).resolve().parents[4]
POLICY: AccountsPolicy = load_policy_dir(REPO / "policies").documents["accounts"]  # type: ignore[assignment]  # documents holds base PolicyDocuments
ADAPTER: TypeAdapter[Any] = TypeAdapter(AccountsObservation)
T0 = datetime.fromisoformat("2026-03-02T21:00:00+08:00")


def feed(
    detector: AccountsDetector, *observations: dict[str, Any], policy: Any = POLICY
) -> list[Finding]:
    found: list[Finding] = []
    for raw in observations:
        found += detector.evaluate(ADAPTER.validate_python(raw), policy, T0)
    return [f for f in found if f.kind != "account.session"]  # records, not alarms


def login(at: datetime, account: str = "wb_zhang", host: str = "ws-it-01") -> dict[str, Any]:
    return {
        "type": "session",
        "action": "open",
        "account": account,
        "host": host,
        "time": at.isoformat(),
        "session_id": at.isoformat(),
    }


def test_one_login_seen_twice_is_reported_once() -> None:
    """logind and the auth log both report one login: one finding; a later one is new."""
    detector = AccountsDetector()
    auth = {
        "type": "auth",
        "program": "sshd",
        "action": "login_success",
        "target": "wb_zhang",
        "host": "ws-it-01",
        "time": (T0 + timedelta(seconds=1)).isoformat(),
    }
    first = feed(detector, login(T0), auth)
    assert [f.rule_id for f in first] == ["accounts.login-outside-hours"]
    later = feed(detector, login(T0 + timedelta(minutes=30)))
    assert [f.rule_id for f in later] == ["accounts.login-outside-hours"]


def test_forbidden_group_is_state_reported_on_change() -> None:
    detector = AccountsDetector()
    state = {
        "type": "groups",
        "account": "wb_zhang",
        "groups": ["wb_zhang", "sudo"],
        "time": T0.isoformat(),
    }
    assert len(feed(detector, state)) == 1
    assert feed(detector, state) == []
    assert feed(detector, {**state, "groups": ["wb_zhang"]}) == []
    assert len(feed(detector, state)) == 1


def test_expired_exception_no_longer_holds() -> None:
    """An exception row past its expiry date stops silencing the rule."""
    data = POLICY.model_dump(mode="json")
    rule = next(r for r in data["rules"] if r["id"] == "accounts.login-outside-hours")
    rule["exceptions"][0]["expires"] = "2026-03-01"
    expired = AccountsPolicy.model_validate(data)
    detector = AccountsDetector()
    found = feed(detector, login(T0, "wb_overtime", "ws-it-09"), policy=expired)
    assert [f.rule_id for f in found] == ["accounts.login-outside-hours"]


def test_every_finding_carries_valid_typed_evidence() -> None:
    detector = AccountsDetector()
    found = feed(
        detector,
        login(T0, "wb_gone", "ws-judge-01"),
        {
            "type": "tamper",
            "what": "log_truncated",
            "path": "/var/log/auth.log",
            "time": T0.isoformat(),
        },
        {
            "type": "auth",
            "program": "sshd",
            "action": "account_expired",
            "target": "wb_zhang",
            "time": T0.isoformat(),
        },
    )
    assert {f.rule_id for f in found} >= {
        "accounts.login-disabled-account",
        "accounts.login-unassigned-host",
        "accounts.login-outside-hours",
        "accounts.tamper",
        "accounts.login-outside-contract",
    }
    for finding in found:
        EVIDENCE_MODELS[finding.kind].model_validate(finding.evidence)
        assert finding.time is not None


def test_bad_policy_references_are_refused() -> None:
    """Unknown roles and unknown @list references are cross-field problems (lint)."""
    data = POLICY.model_dump(mode="json")
    data["accounts"].append({"name": "x", "role": "nope", "sponsor": "s"})
    with pytest.raises(ValueError, match="unknown role 'nope'"):
        AccountsPolicy.model_validate(data)
    data = POLICY.model_dump(mode="json")
    data["roles"]["maintenance"]["hosts"] = ["@missing_list"]
    with pytest.raises(
        ValueError, match=re.escape("roles.maintenance.hosts[0]: refers to list 'missing_list'")
    ):
        AccountsPolicy.model_validate(data)


def test_one_mount_seen_by_udisks_and_the_mount_table_is_reported_once() -> None:
    """udisksd names the account, the mount table the device: one removable-mount finding."""
    detector = AccountsDetector()
    at = T0.isoformat()
    found = feed(
        detector,
        {
            "type": "auth",
            "program": "udisksd",
            "action": "mount",
            "actor": "wb_zhang",
            "device": "/dev/sdc1",
            "mountpoint": "/media/wb_zhang/U",
            "time": at,
        },
        {
            "type": "mount",
            "device": "/dev/sdc1",
            "mountpoint": "/media/wb_zhang/U",
            "removable": True,
            "vendor_id": "0781",
            "product_id": "5581",
            "serial": "4C53",
            "account": "wb_zhang",
            "source": "mountinfo",
            "time": at,
        },
    )
    assert sorted(f.rule_id or "" for f in found) == [
        "accounts.removable-mount",
        "accounts.unapproved-device",
    ]


def test_a_holiday_supplied_in_policy_is_a_holiday_for_the_detector() -> None:
    """A 2027 holiday given in calendar.years (placeholder dates) is judged as one; without the
    year, the library knows no 2027 and a Monday morning login passes as working hours."""
    data = yaml.safe_load((REPO / "policies" / "accounts.yaml").read_text())
    data["calendar"]["years"] = [{
        "year": 2027, "notice": "占位示例，非真实通知",
        "holidays": [{"name": "春节", "start": "2027-02-06", "end": "2027-02-12"}],
        "workdays": ["2027-02-14"],
    }]
    with_year = AccountsPolicy.model_validate(data)
    monday = datetime.fromisoformat("2027-02-08T10:00:00+08:00")
    contract = "accounts.login-outside-contract"  # wb_zhang's shipped contract ends in 2026
    found = [f for f in feed(AccountsDetector(), login(monday), policy=with_year)
             if f.rule_id != contract]
    assert [f.rule_id for f in found] == ["accounts.login-on-holiday"]
    assert "春节" in found[0].summary
    assert found[0].evidence["day_kind"] == "holiday"
    assert [f.rule_id for f in feed(AccountsDetector(), login(monday))] == [contract]
