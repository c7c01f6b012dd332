"""Parsing recorded and documented log lines of every program the accounts detector reads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from agent.detectors.accounts.observations import AuthRecord
from agent.detectors.accounts.readers.authlog_parser import (
    parse_journal_entry,
    parse_message,
    parse_syslog_line,
)

FIXTURES = Path(__file__).parent / "fixtures"


def _records(name: str) -> list[AuthRecord]:
    lines = (FIXTURES / name).read_text().splitlines()
    return [r for line in lines if (r := parse_syslog_line(line, year=2026)) is not None]


def _actions(records: list[AuthRecord]) -> list[tuple[str, str | None, str | None]]:
    return [(r.action, r.actor, r.target) for r in records]


def test_real_debian_sudo_and_su_lines() -> None:
    """sudo refused and allowed, su sessions and a failed su, as Debian 12 wrote them."""
    actions = _actions(_records("debian12-sudo-su.log"))
    user = "wbfx8774"
    assert ("sudo_refused", user, "root") in actions
    assert ("sudo", user, "root") in actions
    assert ("su_failure", user, "root") in actions
    assert ("su", "root", user) in actions
    assert ("session_open", None, user) in actions
    # sudo's own PAM session for root is not a login, nor is its PAM auth-failure line
    assert not any(a == ("session_open", None, "root") for a in actions)
    assert sum(1 for a in actions if a[0] == "login_failure") == 0


def test_real_debian_sudo_command_and_time() -> None:
    """COMMAND keeps its arguments; RFC 3339 timestamps keep their offset."""
    refused = next(r for r in _records("debian12-sudo-su.log") if r.action == "sudo")
    assert refused.command == "/usr/bin/id"
    assert refused.time.utcoffset() is not None
    passwd = [r for r in _records("debian12-sudo-su.log") if "passwd" in r.command]
    assert passwd and passwd[0].command == "/usr/bin/passwd -S root"


def test_real_debian_account_management_lines() -> None:
    """useradd, groupadd, usermod, gpasswd, chpasswd and an expired account, as written."""
    records = _records("debian12-account-management.log")
    actions = {r.action for r in records}
    assert {
        "user_added",
        "group_added",
        "group_member_added",
        "group_member_removed",
        "user_changed",
        "password_changed",
        "account_expired",
        "su_failure",
        "user_deleted",
    } <= actions
    added = [r for r in records if r.action == "group_member_added"]
    assert any(r.group == "sudo" for r in added)  # useradd -G sudo
    assert any(r.actor == "root" for r in added)  # gpasswd names who did it
    # the shadow-group twin of each membership line is not counted twice
    assert len(added) == 3


def test_documented_formats_of_other_programs() -> None:
    """sshd, login, gdm, lightdm, logind, udisksd, pkexec, polkitd, crontab (synthetic lines)."""
    records = _records("synthetic-bsd-formats.log")
    by_action: dict[str, list[AuthRecord]] = {}
    for record in records:
        by_action.setdefault(record.action, []).append(record)
    accepted = by_action["login_success"][0]
    assert (accepted.target, accepted.remote_host) == ("wb_zhang", "198.18.3.4")
    # sshd writes "Failed password" and a PAM failure line for one attempt: counted once
    sshd_failures = [r for r in by_action["login_failure"] if r.program == "sshd"]
    assert len(sshd_failures) == 3
    assert {r.service for r in by_action["login_failure"]} == {"sshd", "login", "lightdm"}
    assert {r.service for r in by_action["session_open"]} >= {
        "sshd",
        "login",
        "gdm-password",
        "lightdm",
        "systemd-logind",
    }
    assert by_action["account_expired"][0].target == "wb_li"
    assert by_action["mount"][0].actor == "#1003"
    assert by_action["mount"][0].mountpoint == "/media/wb_zhang/KINGSTON"
    assert [r.actor for r in by_action["pkexec"]] == ["wb_zhang"]
    assert len(by_action["pkexec_failure"]) == 2
    assert [r.command for r in by_action["cron_edit"]] == ["BEGIN EDIT", "REPLACE"]
    assert by_action["sudo_refused"][0].service == "3 incorrect password attempts"
    assert {r.action for r in records if r.program == "su"} == {"su", "su_failure"}
    assert all(r.program != "CRON" for r in records)  # the scheduler's own runs are not people


def test_journal_entries() -> None:
    """journalctl -o json lines; a binary MESSAGE and an unknown program are skipped."""
    lines = (FIXTURES / "synthetic-journal.jsonl").read_text().splitlines()
    records = [r for line in lines if (r := parse_journal_entry(line)) is not None]
    assert [r.action for r in records] == ["sudo_refused", "session_open", "group_member_added"]
    assert records[0].time == datetime.fromtimestamp(1795836600, UTC)
    assert records[0].host == "uos-ws07"


def test_garbage_is_none_never_an_error() -> None:
    """Bad input of any shape yields None."""
    for line in [
        "",
        "garbage",
        "Nov 99 99:99:99 h sudo: x",
        "\x00" * 10000,
        "2026-13-40T00:00:00+00:00 h sshd[1]: Accepted password for",
    ]:
        assert parse_syslog_line(line) is None
    for entry in ["{", "[]", '{"MESSAGE": "x"}', '{"MESSAGE":"x","SYSLOG_IDENTIFIER":"sudo"}']:
        assert parse_journal_entry(entry) is None
    when = datetime(2026, 3, 2, tzinfo=UTC)
    assert parse_message("sudo", None, "x : y", when, "h") is not None  # odd but shaped
    assert parse_message("unknown", None, "whatever", when, "h") is None
