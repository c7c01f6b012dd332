"""The daemon with fake detectors: wiring, degraded and crashing detectors, shutdown, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent.daemon import Daemon
from agent.detectors.accounts.policy import AccountsPolicy
from agent.errors import NotEnrolledError, PolicyError
from agent.events import Event, Finding
from agent.settings import AgentSettings
from agent.spool import Spool
from agent.testing import (
    FakeCollector,
    FakeDetector,
    FakeSource,
    eventually,
    fake_spec,
    lacking_spec,
    write_credentials,
)

CLI = "import sys; from agent.cli import main; sys.exit(main())"


def run_daemon(
    settings: AgentSettings,
    collector: FakeCollector,
    registry: Sequence[Any],
    until: Any,
    **kwargs: Any,
) -> tuple[Daemon, int]:
    """Run a daemon in this process until ``until(collector)`` holds, then stop it."""

    async def scenario() -> tuple[Daemon, int]:
        daemon = Daemon(
            settings,
            registry=registry,
            transport=collector.transport(),
            handle_signals=False,
            **kwargs,
        )
        task = asyncio.create_task(daemon.run())
        await eventually(lambda: task.done() or until(collector), 10)
        daemon.request_stop("test over")
        return daemon, await task

    with capture_logs():
        return asyncio.run(asyncio.wait_for(scenario(), 20))


def kinds(collector: FakeCollector) -> list[str]:
    return [e.kind for e in collector.events]


def of_kind(collector: FakeCollector, kind: str) -> list[Event]:
    return [e for e in collector.events if e.kind == kind]


def test_findings_flow_from_source_to_collector(
    enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """Observations become findings, spooled and shipped with the agent's identity."""
    spec = fake_spec("alpha", ["a", "b", "c"])
    _, code = run_daemon(
        enrolled, collector, [spec], lambda c: len(of_kind(c, "fake.observed")) == 3
    )
    assert code == 0
    observed = of_kind(collector, "fake.observed")
    assert [e.evidence["observation"] for e in observed] == ["a", "b", "c"]
    assert all(e.agent_id == collector.agent_id and e.host == "ws-test" for e in observed)
    assert all(e.policy_version and e.policy_version.startswith("local-") for e in observed)


def test_started_comes_first_and_stopping_last(
    enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """agent.started is the first event, a heartbeat follows at once, agent.stopping is last."""
    _, code = run_daemon(enrolled, collector, [], lambda c: "agent.heartbeat" in kinds(c))
    assert code == 0
    assert kinds(collector)[0] == "agent.started"
    assert kinds(collector)[-1] == "agent.stopping"
    assert [e.seq for e in collector.events] == sorted(e.seq or 0 for e in collector.events)


def test_missing_capability_is_reported_once_and_others_run(
    enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """A detector lacking a capability is not started, reported degraded once; others still run."""
    registry = [lacking_spec("needs_privilege", observations=["x"]), fake_spec("alpha", ["a"])]
    daemon, code = run_daemon(
        enrolled,
        collector,
        registry,
        lambda c: of_kind(c, "fake.observed") and of_kind(c, "agent.detector_degraded"),
    )
    assert code == 0
    (degraded,) = of_kind(collector, "agent.detector_degraded")
    assert degraded.evidence["detector"] == "needs_privilege"
    assert degraded.evidence["state"] == "degraded"
    assert "missing capabilities" in str(degraded.evidence["reason"])
    assert degraded.rule_id == "agent.detector-degraded"
    assert [e.evidence["observation"] for e in of_kind(collector, "fake.observed")] == ["a"]
    assert daemon.health["needs_privilege"].state == "degraded"
    assert "needs_privilege" not in daemon.running


def test_crashing_detector_fails_alone(enrolled: AgentSettings, collector: FakeCollector) -> None:
    """A detector that raises is marked failed and reported; the other keeps producing findings."""
    registry = [
        fake_spec("crashy", ["ok", "boom", "never"], crash_on="boom"),
        fake_spec("steady", ["s1", "s2"], interval_s=0.05),
    ]
    daemon, code = run_daemon(
        enrolled,
        collector,
        registry,
        lambda c: len(of_kind(c, "fake.observed")) == 3 and of_kind(c, "agent.detector_degraded"),
    )
    assert code == 0
    observations = sorted(
        str(e.evidence["observation"]) for e in of_kind(collector, "fake.observed")
    )
    assert observations == ["ok", "s1", "s2"]
    (failed,) = of_kind(collector, "agent.detector_degraded")
    assert failed.evidence["detector"] == "crashy" and failed.evidence["state"] == "failed"
    assert daemon.health["crashy"].state == "failed"
    assert daemon.health["steady"].state == "ok"


def test_unavailable_source_is_degraded(enrolled: AgentSettings, collector: FakeCollector) -> None:
    """A source raising SourceUnavailable leaves its detector degraded with the reason given."""
    registry = [fake_spec("gone", unavailable="netlink is not available here")]
    daemon, _ = run_daemon(
        enrolled, collector, registry, lambda c: of_kind(c, "agent.detector_degraded")
    )
    (event,) = of_kind(collector, "agent.detector_degraded")
    assert "netlink is not available here" in str(event.evidence["reason"])
    assert daemon.health["gone"].state == "degraded"


def test_heartbeat_reports_detector_health(
    enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """Heartbeats list each detector's state, including ones switched off in settings."""
    settings = enrolled.model_copy(
        update={"heartbeat_interval_s": 0.2, "detectors": {"off": False}}
    )
    registry = [fake_spec("crashy", ["boom"], crash_on="boom"), fake_spec("off", ["x"])]
    run_daemon(
        settings,
        collector,
        registry,
        lambda c: any(
            e.evidence["detectors"].get("crashy", {}).get("state") == "failed"  # type: ignore[union-attr]  # a JSON object here
            for e in of_kind(c, "agent.heartbeat")
        ),
    )
    last = of_kind(collector, "agent.heartbeat")[-1].evidence
    assert last["detectors"]["off"] == {"state": "disabled", "reason": "off in settings"}  # type: ignore[index, call-overload]  # a JSON object here
    assert not [e for e in of_kind(collector, "fake.observed") if e.evidence["observation"] == "x"]


def test_a_source_working_a_lesser_way_says_so_in_the_heartbeat(
    enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """A source's ``status_note`` (the accounts scan standing in for process events) is the
    reason beside its detector's ok state in the heartbeat."""
    settings = enrolled.model_copy(update={"heartbeat_interval_s": 0.2})
    source = FakeSource()
    source.status_note = "processes: no process connector; scanning every 2 s"  # type: ignore[attr-defined]  # what AccountsSource carries
    spec = dataclasses.replace(fake_spec("noted"), make_source=lambda context: source)
    run_daemon(
        settings,
        collector,
        [spec],
        lambda c: any("noted" in e.evidence["detectors"] for e in of_kind(c, "agent.heartbeat")),  # type: ignore[operator]  # a JSON object here
    )
    last = of_kind(collector, "agent.heartbeat")[-1].evidence
    assert last["detectors"]["noted"] == {  # type: ignore[index, call-overload]  # a JSON object here
        "state": "ok",
        "reason": "processes: no process connector; scanning every 2 s",
    }


def test_finalize_runs_on_a_timer_and_at_shutdown(
    enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """finalize is called every finalize_every_s and once more when the agent stops."""
    detector = FakeDetector()
    spec = fake_spec("windowed", finalize_every_s=0.05, detector=detector)
    run_daemon(enrolled, collector, [spec], lambda c: detector.finalized >= 2)
    assert detector.finalized >= 3


class HoldingDetector(FakeDetector):
    """Holds each observation until the next finalize, and says when it holds nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = False

    def evaluate(self, observation: Any, policy: Any, now: datetime) -> list[Finding]:
        self.holding = True
        return super().evaluate(observation, policy, now)

    def finalize(self, policy: Any, now: datetime) -> list[Finding]:
        self.holding = False
        return super().finalize(policy, now)

    def idle(self) -> bool:
        return not self.holding


def test_an_idle_detector_is_finalized_only_after_it_evaluated_something(
    enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """A detector that holds nothing is not woken by the finalize timer: one finalize per
    observation it took (and the one at shutdown), however often the timer ran between."""
    detector = HoldingDetector()
    spec = fake_spec(
        "holding", ["a", "b", "c"], interval_s=0.3, finalize_every_s=0.01, detector=detector
    )
    run_daemon(
        enrolled, collector, [spec], lambda c: len(detector.seen) == 3 and not detector.holding
    )
    assert detector.finalized <= len(detector.seen) + 1


def test_ready_is_notified_to_systemd(
    enrolled: AgentSettings,
    collector: FakeCollector,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under systemd the daemon sends READY=1 once it runs, and STOPPING=1 when it stops."""
    path = tmp_path / "notify.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    run_daemon(enrolled, collector, [], lambda c: "agent.heartbeat" in kinds(c))
    messages = []
    while True:
        try:
            messages.append(receiver.recv(4096).decode())
        except BlockingIOError:
            break
    receiver.close()
    assert messages[0].startswith("READY=1")
    assert "STOPPING=1" in messages


def test_not_enrolled_is_a_clear_error(settings: AgentSettings, collector: FakeCollector) -> None:
    """Without credentials the daemon refuses to start and names the enroll command."""
    with pytest.raises(NotEnrolledError, match="courtguard-agent enroll"):
        run_daemon(settings, collector, [], lambda c: True)


def test_missing_policy_section_is_a_policy_error(
    enrolled: AgentSettings, collector: FakeCollector, tmp_path: Path
) -> None:
    """A policy directory without the agent section stops start-up with a PolicyError."""
    empty = tmp_path / "empty-policies"
    empty.mkdir()
    settings = enrolled.model_copy(update={"policy_dir": empty})
    with pytest.raises(PolicyError, match="agent"):
        run_daemon(settings, collector, [], lambda c: True)


# -- as a process ---------------------------------------------------------------


def agent_env(settings: AgentSettings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTGUARD_AGENT_")}
    env.update(
        {
            "COURTGUARD_AGENT_CONFIG": "",
            "COURTGUARD_AGENT_DATA_DIR": str(settings.data_dir),
            "COURTGUARD_AGENT_POLICY_DIR": str(settings.policy_dir),
            "COURTGUARD_AGENT_ALLOW_PLAIN_HTTP": "true",
            "COURTGUARD_AGENT_HEARTBEAT_INTERVAL_S": "0.5",
            "COURTGUARD_AGENT_SHUTDOWN_FLUSH_S": "1",
            "COURTGUARD_AGENT_BACKOFF_MAX_S": "0.5",
            "COURTGUARD_AGENT_LOG_FORMAT": "json",
            # Real detectors change the host (the outreach one installs an nftables table);
            # these tests are about the process, tests/agent/detectors about detectors.
            "COURTGUARD_AGENT_DETECTORS__OUTREACH": "false",
        }
    )
    env.update(extra)
    return env


def closed_port_url() -> str:
    """An http URL on loopback where nothing listens (the OS picks the port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_sigterm_shuts_down_cleanly(settings: AgentSettings, collector: FakeCollector) -> None:
    """SIGTERM makes a running agent log its stop, spool agent.stopping and exit 0."""
    write_credentials(settings.data_dir, collector, url=closed_port_url())
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, "run"],
        env=agent_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "agent ready" in line:
            break
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=15)
    records = [json.loads(line) for line in [*lines, *out.splitlines()] if line.startswith("{")]
    assert process.returncode == 0, err
    assert [r["event"] for r in records if r["event"] in ("agent ready", "agent stopped")] == [
        "agent ready",
        "agent stopped",
    ]
    stopping = next(r for r in records if r["event"] == "agent stopping")
    assert stopping["reason"] == "SIGTERM"
    assert collector.secret not in "".join(lines) + out + err
    with Spool(settings.spool_path, agent_id=None, host="ws", max_bytes=1 << 26) as spool:
        bodies = [json.loads(body) for _, _, body in spool.batch(1000, 1 << 30)]
    assert bodies[0]["kind"] == "agent.started" and bodies[-1]["kind"] == "agent.stopping"


@pytest.mark.parametrize(
    "policy_text",
    [None, "kind: agent\nschema_version: 1\nrules: [{id: bad}]\n"],
    ids=["missing", "invalid"],
)
def test_bad_policy_exits_2_with_a_clear_message(
    settings: AgentSettings,
    collector: FakeCollector,
    tmp_path: Path,
    policy_text: str | None,
) -> None:
    """A missing or invalid policy makes `run` exit 2 with a message and no traceback."""
    write_credentials(settings.data_dir, collector)
    policies = tmp_path / "bad-policies"
    policies.mkdir()
    if policy_text is not None:
        (policies / "agent.yaml").write_text(policy_text)
    result = subprocess.run(
        [sys.executable, "-c", CLI, "run"],
        env=agent_env(settings, COURTGUARD_AGENT_POLICY_DIR=str(policies)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("courtguard-agent: ")
    assert "Traceback" not in result.stderr
    assert "agent" in result.stderr and str(policies) in result.stderr


class SteppedClock:
    """The daemon's clock, fixed by the test; counts how often the daemon asked for the time."""

    def __init__(self, moment: str) -> None:
        self.now = datetime.fromisoformat(moment)
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        return self.now


def calendar_spec() -> Any:
    """A detector that reads the accounts policy, which carries the calendar section."""
    return fake_spec("contractor_hours", policy_model=AccountsPolicy)


def run_calendar_checks(settings: AgentSettings, collector: FakeCollector, clock: SteppedClock,
                        checks: int) -> list[Event]:
    """Run the daemon until it has checked the calendar ``checks`` times; its calendar events."""
    settings = settings.model_copy(update={"calendar_check_interval_s": 0.01})
    run_daemon(settings, collector, [calendar_spec()], lambda _c: clock.calls >= checks,
               clock=clock)
    return [e for e in collector.events if e.kind.startswith("agent.calendar_")]


def test_calendar_running_out_is_reported_once_a_day(
    enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """From 60 days before the library's last day: one agent.calendar_expiring, not one a check."""
    clock = SteppedClock("2026-11-15T09:00:00+08:00")
    (event,) = run_calendar_checks(enrolled, collector, clock, 5)
    assert (event.kind, event.severity, event.rule_id) == (
        "agent.calendar_expiring", "medium", "agent.calendar-expiring")
    assert event.evidence == {"covered_until": "2026-12-31", "library_until": "2026-12-31",
                              "policy_years": [], "days_left": 46}
    assert "节假日日历仅覆盖至 2026-12-31，请在策略中补充 2027 年国务院办公厅公布的放假安排" in (
        event.summary)


def test_calendar_warning_comes_again_the_next_day(
    enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """A new Shanghai day (2026-12-31, the last covered day) makes one more warning."""
    clock = SteppedClock("2026-12-30T23:59:00+08:00")

    async def scenario() -> list[Event]:
        settings = enrolled.model_copy(update={"calendar_check_interval_s": 0.01})
        daemon = Daemon(settings, registry=[calendar_spec()], transport=collector.transport(),
                        handle_signals=False, clock=clock)
        task = asyncio.create_task(daemon.run())
        await eventually(lambda: clock.calls >= 3, 10)
        clock.now = datetime.fromisoformat("2026-12-31T00:01:00+08:00")
        seen = clock.calls
        await eventually(lambda: clock.calls >= seen + 3, 10)
        daemon.request_stop("test over")
        await task
        return [e for e in collector.events if e.kind.startswith("agent.calendar_")]

    with capture_logs():
        found = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert [e.evidence["days_left"] for e in found] == [1, 0]


def test_calendar_past_its_end_is_reported_expired(
    enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """After 2026-12-31 days are judged by plain weekdays: agent.calendar_expired, high."""
    clock = SteppedClock("2027-01-02T09:00:00+08:00")
    (event,) = run_calendar_checks(enrolled, collector, clock, 5)
    assert (event.kind, event.severity, event.rule_id) == (
        "agent.calendar_expired", "high", "agent.calendar-expired")
    assert event.evidence["days_left"] == -2
    assert "按普通工作日和周末判断" in event.summary


def test_a_year_supplied_in_policy_extends_the_calendar(
    enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """calendar.years 2027 in the accounts policy: no warning on 2027-01-02 nor on 2026-11-15."""
    accounts = enrolled.policy_dir / "accounts.yaml"
    accounts.write_text(accounts.read_text().replace(
        "  holidays: []\n",
        "  years:\n"
        "    - year: 2027\n"
        "      holidays: [{name: 元旦, start: 2027-01-01, end: 2027-01-03}]\n"
        "  holidays: []\n", 1))
    assert run_calendar_checks(enrolled, collector, SteppedClock("2027-01-02T09:00:00+08:00"),
                               5) == []


def test_no_calendar_check_without_a_detector_that_reads_one(
    enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """An agent running no calendar-reading detector says nothing about the calendar."""
    clock = SteppedClock("2027-01-02T09:00:00+08:00")
    settings = enrolled.model_copy(update={"calendar_check_interval_s": 0.01})
    run_daemon(settings, collector, [fake_spec("alpha")], lambda _c: clock.calls >= 5,
               clock=clock)
    assert not [e for e in collector.events if e.kind.startswith("agent.calendar_")]
