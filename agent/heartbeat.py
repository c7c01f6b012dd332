"""The agent's periodic ``agent.heartbeat``: how it is doing, in one event."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from agent.events import (
    DetectorHealth,
    Finding,
    HeartbeatEvidence,
    PolicyRejectedEvidence,
    Severity,
)
from agent.version import __version__

if TYPE_CHECKING:
    from agent.spool import SpoolStats


class HeartbeatBuilder:
    """Measures the process between heartbeats and turns the numbers into a finding."""

    def __init__(self, interval_s: float) -> None:
        import psutil  # lazily: only the daemon needs it

        self.interval_s = interval_s
        self._started = time.monotonic()
        self._process = psutil.Process()
        # The first call only starts the measurement; each later one covers the interval since.
        self._process.cpu_percent(None)

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started

    def evidence(
        self,
        policy_version: str | None,
        stats: SpoolStats,
        detectors: Mapping[str, DetectorHealth],
        policy_rejected: PolicyRejectedEvidence | None = None,
    ) -> HeartbeatEvidence:
        return HeartbeatEvidence(
            agent_version=__version__,
            uptime_s=round(self.uptime_s, 3),
            interval_s=self.interval_s,
            policy_version=policy_version,
            spool_depth=stats.depth,
            spool_bytes=stats.bytes,
            events_dropped=stats.dropped_total,
            events_quarantined=stats.quarantined,
            rss_bytes=self._process.memory_info().rss,
            cpu_percent=round(self._process.cpu_percent(None), 2),
            detectors=dict(detectors),
            policy_rejected=policy_rejected,
        )

    def finding(
        self,
        policy_version: str | None,
        stats: SpoolStats,
        detectors: Mapping[str, DetectorHealth],
        policy_rejected: PolicyRejectedEvidence | None = None,
    ) -> Finding:
        evidence = self.evidence(policy_version, stats, detectors, policy_rejected)
        unhealthy = sum(1 for h in detectors.values() if h.state in ("degraded", "failed"))
        summary = (
            f"心跳：已运行 {int(evidence.uptime_s)} 秒，待发送事件 {stats.depth} 条，"
            f"已丢弃 {stats.dropped_total} 条，已隔离 {stats.quarantined} 条"
        )
        if unhealthy:
            summary += f"，{unhealthy} 个检测器未正常运行"
        if policy_rejected is not None:
            summary += f"，已拒绝策略包（{policy_rejected.reason_code}）"
        return Finding(
            kind="agent.heartbeat",
            severity=Severity.INFO,
            summary=summary,
            evidence=evidence.model_dump(mode="json", exclude_none=True),
        )
