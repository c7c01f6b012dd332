"""The heartbeat: process figures, spool counters and detector health in one valid event."""

from __future__ import annotations

import uuid
from pathlib import Path

from agent.events import DetectorHealth, Event, HeartbeatEvidence
from agent.heartbeat import HeartbeatBuilder
from agent.spool import Spool, SpoolStats
from agent.version import __version__

STATS = SpoolStats(
    depth=3, bytes=900, max_bytes=1 << 20, dropped={"info": 2, "low": 1}, quarantined=4
)


def test_evidence_carries_process_and_spool_figures() -> None:
    """The evidence has the version, own RSS and CPU, and the spool's counters."""
    evidence = HeartbeatBuilder(60).evidence("local-1", STATS, {})
    assert evidence.agent_version == __version__ and evidence.policy_version == "local-1"
    assert evidence.rss_bytes > 1024 * 1024 and evidence.cpu_percent >= 0
    assert (evidence.spool_depth, evidence.spool_bytes) == (3, 900)
    assert evidence.events_dropped == 3 and evidence.events_quarantined == 4
    assert evidence.interval_s == 60


def test_detector_health_is_reported() -> None:
    """Each detector's state and reason appear in the evidence."""
    health = {"net": DetectorHealth(state="degraded", reason="missing CAP_NET_RAW")}
    evidence = HeartbeatBuilder(60).evidence(None, STATS, health)
    assert evidence.detectors == health


def test_finding_spools_as_a_valid_heartbeat_event(tmp_path: Path) -> None:
    """The finding spools as an agent.heartbeat event with typed evidence and a Chinese summary."""
    finding = HeartbeatBuilder(60).finding("local-1", STATS, {})
    with Spool(tmp_path / "spool.db", agent_id=uuid.uuid4(), host="ws", max_bytes=1 << 20) as spool:
        (event,) = spool.append([finding])
    again = Event.model_validate_json(spool_bytes(tmp_path))
    assert isinstance(again.typed_evidence(), HeartbeatEvidence)
    assert event.summary.startswith("心跳")


def spool_bytes(tmp_path: Path) -> bytes:
    with Spool(tmp_path / "spool.db", agent_id=None, host="ws", max_bytes=1 << 20) as spool:
        return spool.batch(1, 1 << 20)[0][2]
