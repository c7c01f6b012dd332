"""The daemon hands a finding's capture order to the evidence service with the event's id."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from structlog.testing import capture_logs

from agent.daemon import Daemon
from agent.events import CaptureOrder, Finding
from agent.policy.models import PolicyDocument
from agent.settings import AgentSettings
from agent.testing import FakeCollector, FakeDetector, eventually, fake_spec


class CapturingDetector(FakeDetector):
    """Each finding orders a capture on an interface this machine does not have."""

    def evaluate(self, observation: Any, policy: PolicyDocument, now: datetime) -> list[Finding]:
        return [f.model_copy(update={"capture": CaptureOrder(interface="cgnosuch0",
                                                               duration_s=1)})
                for f in super().evaluate(observation, policy, now)]


def test_a_failed_capture_is_reported_against_its_event(
    enrolled: AgentSettings, collector: FakeCollector
) -> None:
    """The capture child runs for the spooled event and fails (no such interface): an
    agent.evidence_lost event names that event's id, and nothing waits on disk."""
    spec = fake_spec("alpha", ["a"], detector=CapturingDetector())

    def lost() -> list[Any]:
        return [e for e in collector.events if e.kind == "agent.evidence_lost"]

    async def scenario() -> int:
        daemon = Daemon(enrolled, registry=[spec], transport=collector.transport(),
                        handle_signals=False)
        task = asyncio.create_task(daemon.run())
        # The child imports scapy before it fails: a generous ceiling for a loaded machine.
        await eventually(lambda: task.done() or bool(lost()), 240)
        daemon.request_stop("test over")
        return await task

    with capture_logs():
        assert asyncio.run(asyncio.wait_for(scenario(), 300)) == 0
    observed = [e for e in collector.events if e.kind == "fake.observed"]
    assert len(observed) == 1 and len(lost()) == 1
    report = lost()[0]
    assert report.evidence["event_id"] == str(observed[0].id)
    assert report.evidence["code"] == "capture_failed"
    assert not any((enrolled.data_dir / "evidence").glob("*.pcap"))
