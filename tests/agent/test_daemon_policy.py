"""The daemon and central policy: apply to every detector at once, keep the last good, report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent.daemon import Daemon
from agent.detector import DetectorSpec, SourceContext
from agent.events import Event, Finding, Severity
from agent.policy.bundle import BUNDLE_FORMAT, parse_bundle
from agent.policy.client import last_good_path
from agent.policy.loader import load_policy_dir
from agent.policy.models import AgentPolicy, PolicyDocument
from agent.settings import AgentSettings
from agent.testing import FakeCollector, FakeSource, PolicySigner, eventually, write_credentials

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = load_policy_dir(REPO / "policies").documents


class SectionSource(FakeSource):
    """Ticks forever and records every section ``update_policy`` hands it."""

    def __init__(self) -> None:
        super().__init__(range(10_000), interval_s=0.02)
        self.updates: list[PolicyDocument | None] = []

    def update_policy(self, section: PolicyDocument | None) -> None:
        self.updates.append(section)


class SectionDetector:
    """Emits nothing; remembers the section each observation was judged with."""

    name = "sections"
    policy_section = "agent"
    description = "Remembers sections."

    def __init__(self) -> None:
        self.seen: list[tuple[float, PolicyDocument]] = []

    def evaluate(self, observation: Any, policy: PolicyDocument, now: datetime) -> list[Finding]:
        self.seen.append((time.monotonic(), policy))
        return []

    def finalize(self, policy: PolicyDocument, now: datetime) -> list[Finding]:
        return []


def spec(source: SectionSource, detector: SectionDetector) -> DetectorSpec[Any, Any]:
    def make_source(_ctx: SourceContext) -> SectionSource:
        return source

    return DetectorSpec(name="sections", description="Remembers sections.",
                        policy_section="agent", make_source=make_source,
                        make_detector=lambda: detector, policy_model=AgentPolicy)


def with_missed(missed: int) -> dict[str, PolicyDocument]:
    """The shipped documents with agent.silent's missed_heartbeats changed: a visible edit."""
    data = DOCUMENTS["agent"].model_dump(mode="json")
    data["rules"][0]["match"]["missed_heartbeats"] = missed
    return {"agent": type(DOCUMENTS["agent"]).model_validate(data)}


def missed_of(section: Any) -> int:
    return int(section.rule("agent.silent").match.missed_heartbeats)


def of_kind(collector: FakeCollector, kind: str) -> list[Event]:
    return [e for e in collector.events if e.kind == kind]


async def running_daemon(settings: AgentSettings, collector: FakeCollector,
                         registry: list[Any], scenario: Callable[[Daemon], Any]) -> Daemon:
    daemon = Daemon(settings, registry=registry, transport=collector.transport(),
                    handle_signals=False)
    task = asyncio.create_task(daemon.run())
    await eventually(lambda: daemon.ready.is_set() or task.done(), 10)
    assert not task.done(), task.result()
    try:
        await scenario(daemon)
    finally:
        daemon.request_stop("test over")
        await task
    return daemon


def run(coro: Any) -> Any:
    with capture_logs():
        return asyncio.run(asyncio.wait_for(coro, 30))


def enrolled_with_key(make_settings: Callable[..., AgentSettings], signer: PolicySigner,
                      **overrides: Any) -> tuple[AgentSettings, FakeCollector]:
    collector = FakeCollector(policy_key=signer.public_key)
    settings = make_settings(**overrides)
    write_credentials(settings.data_dir, collector)
    return settings, collector


def test_detector_sees_new_policy_within_one_interval(
    make_settings: Callable[..., AgentSettings]
) -> None:
    """A publish reaches the running detector's section and its source within one poll."""
    signer = PolicySigner()
    settings, collector = enrolled_with_key(make_settings, signer, policy_poll_s=0.5)
    collector.policy = signer.bundle(with_missed(4), 1)
    source, detector = SectionSource(), SectionDetector()

    async def scenario(daemon: Daemon) -> None:
        await eventually(lambda: daemon.policy.version == "1", 5)
        collector.policy = signer.bundle(with_missed(9), 2)
        published = time.monotonic()
        await eventually(lambda: detector.seen and missed_of(detector.seen[-1][1]) == 9, 5)
        first_seen = next(t for t, section in detector.seen if missed_of(section) == 9)
        assert first_seen - published < 0.5 * 1.1 + 0.2  # one interval (±10 % jitter), a tick
        assert missed_of(daemon.running["sections"].section) == 9
        assert [missed_of(s) for s in source.updates] == [4, 9]
        await eventually(lambda: len(of_kind(collector, "agent.policy_applied")) == 2, 5)

    run(running_daemon(settings, collector, [spec(source, detector)], scenario))
    applied = of_kind(collector, "agent.policy_applied")
    assert [e.evidence["version"] for e in applied] == ["1", "2"]
    assert applied[1].rule_id == "agent.policy-applied" and "策略版本 2" in applied[1].summary
    assert last_good_path(settings.data_dir).exists()


def test_invalid_signed_bundle_keeps_last_good_and_says_why(
    make_settings: Callable[..., AgentSettings]
) -> None:
    """A signed but invalid bundle is refused with its reason, in an event and the heartbeat."""
    signer = PolicySigner()
    settings, collector = enrolled_with_key(make_settings, signer, policy_poll_s=0.2,
                                            heartbeat_interval_s=0.2)
    collector.policy = signer.bundle(with_missed(4), 1)
    broken = with_missed(4)["agent"].model_dump(mode="json")
    broken["rules"][0]["severity"] = "apocalyptic"

    async def scenario(daemon: Daemon) -> None:
        await eventually(lambda: daemon.policy.version == "1", 5)
        collector.policy = signer.raw_bundle({
            "format": BUNDLE_FORMAT, "version": 2, "group": None, "action": "publish",
            "source_version": None, "created_at": "2026-03-02T01:00:00+00:00",
            "author": "x", "note": "", "documents": {"agent": broken}})
        await eventually(lambda: of_kind(collector, "agent.policy_rejected"), 5)
        await eventually(lambda: any(
            "policy_rejected" in e.evidence for e in of_kind(collector, "agent.heartbeat")), 5)
        assert daemon.policy.version == "1"

    run(running_daemon(settings, collector, [], scenario))
    (event,) = of_kind(collector, "agent.policy_rejected")
    assert event.severity is Severity.HIGH and event.rule_id == "agent.policy-rejected"
    assert event.evidence["reason_code"] == "invalid_policy"
    assert "severity" in event.evidence["reason"] and event.evidence["applied_version"] == "1"
    beat = [e for e in of_kind(collector, "agent.heartbeat") if "policy_rejected" in e.evidence]
    assert beat[-1].evidence["policy_version"] == "1"


def test_collector_unreachable_at_start_uses_last_good(
    make_settings: Callable[..., AgentSettings]
) -> None:
    """With the collector down, the agent starts on the stored bundle, not the local files."""
    signer = PolicySigner()
    settings, collector = enrolled_with_key(make_settings, signer, policy_poll_s=0.2)
    collector.policy = signer.bundle(with_missed(6), 5)

    async def first_run(daemon: Daemon) -> None:
        await eventually(lambda: daemon.policy.version == "5", 20)
        # Applied means stored: a stop at this moment must not lose the bundle.
        stored = last_good_path(settings.data_dir).read_bytes().partition(b"\n")[2]
        assert parse_bundle(stored).version == 5

    run(running_daemon(settings, collector, [], first_run))
    collector.reachable = False
    source, detector = SectionSource(), SectionDetector()

    async def second_run(daemon: Daemon) -> None:
        await eventually(lambda: detector.seen, 20)
        assert daemon.policy.version == "5"
        assert missed_of(detector.seen[0][1]) == 6

    run(running_daemon(settings, collector, [spec(source, detector)], second_run))


def test_ingest_hint_fetches_at_once(make_settings: Callable[..., AgentSettings]) -> None:
    """With an hour between polls, an ingest answer naming a newer version fetches it now."""
    signer = PolicySigner()
    settings, collector = enrolled_with_key(make_settings, signer, policy_poll_s=3600,
                                            heartbeat_interval_s=0.2)
    collector.policy = signer.bundle(with_missed(4), 1)

    async def scenario(daemon: Daemon) -> None:
        await eventually(lambda: daemon.policy.version == "1", 5)
        collector.policy = signer.bundle(with_missed(5), 2)
        collector.policy_hint = "2"
        await eventually(lambda: daemon.policy.version == "2", 5)

    run(running_daemon(settings, collector, [], scenario))


def test_without_a_pinned_key_local_policy_is_kept(
    enrolled: AgentSettings, collector: FakeCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent enrolled before policy keys never fetches and runs its policy_dir; a
    collector-only file there (the duty roster) is named for deletion."""

    async def scenario(daemon: Daemon) -> None:
        await asyncio.sleep(0.2)
        assert daemon.policy.version.startswith("local-") and daemon.policy_client is None

    logs: list[tuple[str, str, dict[str, Any]]] = []

    class Recorder:  # not capture_logs: a logger cached by an earlier test would bypass it
        def __getattr__(self, level: str) -> Callable[..., None]:
            return lambda event, **fields: logs.append((level, event, fields))

    monkeypatch.setattr("agent.daemon.log", Recorder())
    run(running_daemon(enrolled, collector, [], scenario))
    assert collector.policy_requests == []
    warned = [f for level, event, f in logs
              if level == "warning" and event.startswith("policy_dir holds collector-only")]
    assert [f["kinds"] for f in warned] == [["alerting"]]


def test_group_moved_centrally_is_followed_and_remembered(
    make_settings: Callable[..., AgentSettings]
) -> None:
    """When the collector moves the agent to canary, its canary bundle applies and sticks."""
    import json

    signer = PolicySigner()
    settings, collector = enrolled_with_key(make_settings, signer, policy_poll_s=0.2)
    collector.policy = signer.bundle(with_missed(4), 1)

    async def scenario(daemon: Daemon) -> None:
        await eventually(lambda: daemon.policy.version == "1", 5)
        collector.group = "canary"
        collector.policy = signer.bundle(with_missed(5), 2, group="canary")
        await eventually(lambda: daemon.policy.version == "2", 5)
        await eventually(lambda: stored_group() == "canary", 5)

    def stored_group() -> str:
        return str(json.loads((settings.data_dir / "credentials.json").read_text())["group"])

    run(running_daemon(settings, collector, [], scenario))
    assert stored_group() == "canary"
    assert not of_kind(collector, "agent.policy_rejected")


def test_acknowledged_heartbeats_spare_the_timed_polls(
    make_settings: Callable[..., AgentSettings]
) -> None:
    """While ingest answers name the applied version, timed polls are skipped; newer fetches."""
    signer = PolicySigner()
    settings, collector = enrolled_with_key(make_settings, signer, policy_poll_s=0.5,
                                            heartbeat_interval_s=0.1)
    collector.policy = signer.bundle(with_missed(4), 1)

    async def scenario(daemon: Daemon) -> None:
        await eventually(lambda: daemon.policy.version == "1", 5)
        collector.policy_hint = "1"
        await asyncio.sleep(0.5)
        polls = len(collector.policy_requests)
        await asyncio.sleep(2.0)  # four intervals
        # At most one poll slips through if a loaded machine delays an acknowledgement.
        assert len(collector.policy_requests) <= polls + 1
        assert daemon.policy_client is not None and daemon.policy_client.skipped >= 2
        collector.policy = signer.bundle(with_missed(5), 2)
        collector.policy_hint = "2"
        await eventually(lambda: daemon.policy.version == "2", 2)

    run(running_daemon(settings, collector, [], scenario))


def test_agent_bundle_holds_every_section_the_detectors_read() -> None:
    """Agents are served bundles without collector-only kinds: no detector reads one, and the
    agent's bundle of the shipped policy satisfies every detector of the registry."""
    from agent.daemon import required_sections
    from agent.policy.bundle import open_bundle
    from agent.policy.models import COLLECTOR_ONLY_KINDS, agent_documents
    from agent.registry import DETECTORS, POLICY_KINDS

    required = required_sections(DETECTORS)
    assert all(POLICY_KINDS[kind].AGENT_READS for kind in required)
    assert not required & COLLECTOR_ONLY_KINDS
    signer = PolicySigner()
    signed = signer.bundle(agent_documents(DOCUMENTS), 1)
    _, policies = open_bundle(signed.body, signed.signature, signer.public_key, group="default",
                              applied_version=None, required=required)
    assert "alerting" not in policies.documents and required <= set(policies.documents)
