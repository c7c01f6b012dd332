"""The accounts detector end to end: real users, real su/sudo/usermod, real rsyslog, real collector.

Each test run creates throw-away users and groups with a random suffix,
starts a private rsyslogd that owns /dev/log and writes ``auth,authpriv``
to a temporary auth.log, and runs three agents that tail that file, each
with its own copy of the accounts policy (hours, calendar overrides and
contract dates set relative to the real clock: the detector judges the time
a line was written, so no clock is faked):

* agent ``normal``: in-hours login quiet, out-of-hours login, expired
  contract, sudo refused, added to sudo (the log line and the group state),
  sudo used to reset another user's password, a forbidden program started,
  a protected path touched; the collector's first sighting of the account;
* agent ``holiday``: today is a holiday by the calendar override;
* agent ``makeup``: today is a (make-up) workday by the override.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
import pytest
import yaml

from tests.e2e.harness import POLICIES, Agent, Collector, private_rsyslog, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root]
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required on CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Path]:
    """A private rsyslogd owning /dev/log; yields the auth.log it writes."""
    _require(os.geteuid() == 0, "needs root (users, /dev/log)")
    _require(shutil.which("rsyslogd") is not None, "needs rsyslogd (Debian package rsyslog)")
    _require(shutil.which("sudo") is not None, "needs sudo (Debian package sudo)")
    _require(not os.path.exists("/dev/log"), "/dev/log is owned by another syslog daemon")
    with private_rsyslog(tmp_path / "rsyslog") as auth_log:
        yield auth_log


@pytest.fixture
def collector(tmp_path: Path, database_url: str) -> Iterator[Collector]:
    """The conftest's collector, correlating account events every second."""
    instance = Collector(home=tmp_path, database_url=database_url)
    instance.extra_env["COURTGUARD_COLLECTOR_ACCOUNT_CORRELATION_INTERVAL_S"] = "1"
    instance.init()
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def sudoers() -> Iterator[Callable[[str, str], None]]:
    """Grant a throw-away user one NOPASSWD command; the sudoers files are removed afterwards."""
    written: list[Path] = []

    def grant(user: str, command: str) -> None:
        path = Path(f"/etc/sudoers.d/courtguard-test-{user}")
        path.write_text(f"{user} ALL=(root) NOPASSWD: {command}\n")
        path.chmod(0o440)
        written.append(path)

    yield grant
    for path in written:
        path.unlink(missing_ok=True)


@pytest.fixture
def users() -> Iterator[Callable[[str], str]]:
    """Make throw-away users (random suffix); all are deleted afterwards."""
    made: list[str] = []
    suffix = secrets.token_hex(3)

    def make(prefix: str) -> str:
        name = f"{prefix}{suffix}"
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True)
        made.append(name)
        return name

    yield make
    for name in made:
        subprocess.run(["userdel", "-r", "-f", name], check=False, capture_output=True)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the throw-away users can reach (pytest's own tmp dirs are 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="courtguard-accounts-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _hours(now: datetime, inside: bool) -> dict[str, str]:
    """A window holding ``now`` (±1 h), or one 6-9 h away from it."""
    if inside:
        start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    else:
        start, end = now + timedelta(hours=6), now + timedelta(hours=9)
    return {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}


def _policy_dir(root: Path, name: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    directory = root / f"policies-{name}"
    directory.mkdir()
    for path in POLICIES.glob("*.yaml"):
        if path.name != "accounts.yaml":
            shutil.copy(path, directory / path.name)
    data = yaml.safe_load((POLICIES / "accounts.yaml").read_text())
    edit(data)
    (directory / "accounts.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return directory


def _events(collector: Collector, agent: Agent, rule_id: str) -> list[dict[str, Any]]:
    return collector.events(agent_id=agent.agent_id, rule_id=rule_id)


def _wait_event(
    collector: Collector, agent: Agent, rule_id: str, needle: str, timeout: float = 40
) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next(
            (e for e in _events(collector, agent, rule_id) if needle in str(e["evidence"])), None
        )

    event: dict[str, Any] = wait_until(
        found, timeout, f"{rule_id} for {needle} from {agent.home.name}"
    )
    return event


def run_as(user: str, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["su", user, "-c", " ".join(argv)],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )


def login(user: str) -> None:
    """A real PAM session for ``user`` (su -l writes 'session opened for user')."""
    subprocess.run(["su", "-", user, "-c", "true"], check=True, timeout=30)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_contractor_accounts_end_to_end(
    tmp_path: Path,
    rsyslog: Path,
    users: Callable[[str], str],
    sudoers: Callable[[str, str], None],
    shared_dir: Path,
    collector: Collector,
    make_agent: Callable[..., Agent],
) -> None:
    """Every signal the issue names, from real programs' own log lines to collector events."""
    day, night, old = users("wbd"), users("wbn"), users("wbo")
    now = datetime.now(SHANGHAI)
    today = now.date()
    protected = shared_dir / "protected-cases"
    protected.mkdir()
    protected.chmod(0o777)
    tools = shared_dir / "tools"
    tools.mkdir()
    tools.chmod(0o755)
    fake_scanner = tools / "nmap"
    shutil.copy("/bin/sleep", fake_scanner)  # a real program started under a forbidden name

    def base(data: dict[str, Any]) -> None:
        roles = data["roles"]
        common = {
            "hosts": ["ws-e2e-*"],
            "forbidden_groups": ["@privileged_groups"],
            "forbidden_programs": ["@remote_access_tools", "@sniffers_scanners"],
            "protected_paths": [str(protected)],
            "contract": {
                "start": str(today - timedelta(days=30)),
                "end": str(today + timedelta(days=30)),
            },
        }
        roles["e2e_day"] = {**common, "hours": _hours(now, inside=True), "workdays_only": False}
        roles["e2e_night"] = {**common, "hours": _hours(now, inside=False), "workdays_only": False}
        roles["e2e_old"] = {
            **common,
            "hours": _hours(now, inside=True),
            "workdays_only": False,
            "contract": {
                "start": str(today - timedelta(days=90)),
                "end": str(today - timedelta(days=1)),
            },
        }
        data["accounts"] = [
            {"name": day, "role": "e2e_day", "sponsor": "测试 责任人"},
            {"name": night, "role": "e2e_night", "sponsor": "测试 责任人"},
            {"name": old, "role": "e2e_old", "sponsor": "测试 责任人"},
        ]
        data["calendar"]["key_periods"] = []

    def holiday(data: dict[str, Any]) -> None:
        base(data)
        data["roles"]["e2e_day"]["workdays_only"] = True
        data["calendar"]["holidays"] = [str(today)]

    def makeup(data: dict[str, Any]) -> None:
        base(data)
        data["roles"]["e2e_day"]["workdays_only"] = True
        data["calendar"]["workdays"] = [str(today)]

    agent_settings = {
        "accounts__journal": "false",
        "accounts__auth_logs": f'["{rsyslog}"]',
        "accounts__auth_poll_s": "0.2",
        "accounts__process_poll_s": "0.3",
        "accounts__session_poll_s": "1",
    }
    agents = {}
    for name, edit in (("normal", base), ("holiday", holiday), ("makeup", makeup)):
        agent = make_agent(
            name,
            policy_dir=str(_policy_dir(tmp_path, name, edit)),
            hostname=f"ws-e2e-{name}",
            **agent_settings,
        )
        agent.start()
        agents[name] = agent
    for agent in agents.values():
        collector.wait_online(agent.agent_id)
    normal, on_holiday, on_makeup = agents["normal"], agents["holiday"], agents["makeup"]

    # Logins: in hours (quiet), out of hours, after the contract.
    login(day)
    login(night)
    login(old)
    outside = _wait_event(collector, normal, "accounts.login-outside-hours", night)
    assert outside["severity"] == "medium" and night in outside["summary"]
    expired = _wait_event(collector, normal, "accounts.login-outside-contract", old)
    assert expired["severity"] == "critical"
    # the night login is after the day login in the log, so the day login was judged: quiet
    logins = collector.events(agent_id=normal.agent_id, kind="account.login")
    assert [e["summary"] for e in logins if day in str(e["evidence"])] == []

    # The collector correlates the session records across hosts: first sightings.
    first = _wait_event(collector, normal, "accounts.first-seen-host", day)
    assert first["severity"] == "low" and first["host"] == "ws-e2e-normal"

    # The calendar: a holiday override fires, a make-up workday override stays quiet.
    on_day = _wait_event(collector, on_holiday, "accounts.login-on-holiday", day)
    assert on_day["evidence"]["day_kind"] == "holiday"
    _wait_event(collector, on_makeup, "accounts.login-outside-hours", night)
    assert not any(
        day in str(e["evidence"])
        for e in collector.events(agent_id=on_makeup.agent_id, kind="account.login")
    )

    # sudo refused (not in sudoers): sudo writes its own line through rsyslog.
    refused = run_as(day, "sudo", "-S", "-p", "''", "true", stdin="wrong-password\n")
    assert refused.returncode != 0
    attempt = _wait_event(collector, normal, "accounts.privilege-attempt", day, timeout=60)
    assert attempt["evidence"]["outcome"] == "failure"
    assert "NOT in sudoers" in attempt["evidence"]["raw"]

    # Added to sudo: the usermod line, and the group state re-read on /etc/group change.
    subprocess.run(["usermod", "-aG", "sudo", day], check=True)
    changed = _wait_event(collector, normal, "accounts.account-changed", day)
    assert changed["evidence"]["group"] == "sudo"
    held = _wait_event(collector, normal, "accounts.forbidden-group", day)
    assert held["evidence"]["forbidden"] == ["sudo"]

    # sudo used (a rule lets it), and used to reset another user's password.
    sudoers(day, "/usr/bin/passwd")
    reset = run_as(day, "sudo", "-n", "/usr/bin/passwd", "-d", night)
    assert reset.returncode == 0, reset.stderr
    used = _wait_event(collector, normal, "accounts.privilege-used", day)
    assert used["severity"] == "high" and "passwd -d" in used["evidence"]["command"]
    other = _wait_event(collector, normal, "accounts.password-reset-other", night)
    assert other["evidence"]["actor"] == day and other["evidence"]["target"] == night

    # A forbidden program started by the contractor: the real process, its exe and hash.
    scanner = subprocess.Popen(["runuser", "-u", day, "--", str(fake_scanner), "30"])
    try:
        started = _wait_event(collector, normal, "accounts.forbidden-program", str(fake_scanner))
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            for process in psutil.Process(scanner.pid).children(recursive=True):
                process.kill()  # runuser forks the program; both are ours, killed by pid
        scanner.kill()
        scanner.wait()
    assert started["evidence"]["matched"] == "nmap"
    assert len(started["evidence"]["sha256"]) == 64

    # A protected path touched: a new file is attributed to its owner.
    target = protected / "case-2026-001.txt"
    subprocess.run(["runuser", "-u", day, "--", "touch", str(target)], check=True)
    touched = _wait_event(collector, normal, "accounts.protected-path", str(target))
    assert touched["evidence"]["account"] == day
    assert touched["evidence"]["attribution"] == "file-owner"
