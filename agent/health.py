"""The agent's findings about itself, decided in one pure place from its ``agent`` rules.

The daemon (degraded detectors, policy applied or refused) and the spool
(events dropped when full) do the I/O and hand what they observed to the
functions here, which stamp severity and rule id from ``policies/agent.yaml``.
``SelfDetector`` runs the same functions over observations as data, so the
rules' fire and silent cases exercise the code the daemon runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.calendar_cn import CalendarCoverage, CoverageState
from agent.calendar_coverage import coverage_finding
from agent.events import (
    DetectorDegradedEvidence,
    Finding,
    PolicyAppliedEvidence,
    PolicyRejectedEvidence,
    Severity,
    SpoolDroppedEvidence,
)
from agent.policy.models import PolicyDocument

SPOOL_DROPPED: Final = "agent.spool-dropped"
DETECTOR_DEGRADED: Final = "agent.detector-degraded"
POLICY_APPLIED: Final = "agent.policy-applied"
POLICY_REJECTED: Final = "agent.policy-rejected"
CALENDAR_EXPIRING: Final = "agent.calendar-expiring"
CALENDAR_EXPIRED: Final = "agent.calendar-expired"

_SOURCE_TEXT: Final = {
    "collector": "从采集服务器获取",
    "last_good": "采集服务器不可达，使用本机保存的上次有效版本",
    "local": "使用本机策略目录",
}


def agent_rule(
    section: PolicyDocument | None, rule_id: str, default: Severity = Severity.MEDIUM
) -> tuple[Severity, str | None]:
    """Severity and rule id for one of the agent's own events; ``default`` when the rule is off."""
    rule = section.rule(rule_id) if section is not None else None
    return (rule.severity, rule.id) if rule is not None else (default, None)


def spool_dropped_finding(
    dropped: Mapping[Severity, int], max_bytes: int, severity: Severity, rule_id: str | None
) -> Finding | None:
    """The report of events a full spool dropped; None when nothing was dropped."""
    pending = {s: n for s, n in dropped.items() if n > 0}
    if not pending:
        return None
    total = sum(pending.values())
    detail = "，".join(f"{s.value} {n} 条" for s, n in pending.items())
    return Finding(
        kind="agent.spool_dropped",
        severity=severity,
        rule_id=rule_id,
        summary=(
            f"本地事件缓存已满（上限 {max_bytes // 1024} KiB），"
            f"已丢弃 {total} 条较低级别的事件（{detail}）"
        ),
        evidence=SpoolDroppedEvidence(dropped=pending, spool_max_bytes=max_bytes).model_dump(
            mode="json"
        ),
    )


def detector_degraded_finding(
    section: PolicyDocument | None, detector: str, state: str, reason: str
) -> Finding | None:
    """The report of a detector that cannot do its full work; None for a healthy state."""
    if state not in ("degraded", "failed"):
        return None
    reason = reason[:500]
    severity, rule_id = agent_rule(section, DETECTOR_DEGRADED)
    verb = "降级运行" if state == "degraded" else "已停止工作"
    return Finding(
        kind="agent.detector_degraded",
        severity=severity,
        rule_id=rule_id,
        summary=f"检测器 {detector} {verb}：{reason}"[:500],
        evidence=DetectorDegradedEvidence(detector=detector, state=state, reason=reason).model_dump(
            mode="json"
        ),
    )


def policy_applied_finding(
    section: PolicyDocument | None, evidence: PolicyAppliedEvidence
) -> Finding:
    """The agent runs a new policy version (always reported: the console counts versions)."""
    severity, rule_id = agent_rule(section, POLICY_APPLIED, Severity.INFO)
    before = f"（原版本 {evidence.previous_version}）" if evidence.previous_version else ""
    return Finding(
        kind="agent.policy_applied",
        severity=severity,
        rule_id=rule_id,
        summary=f"已应用策略版本 {evidence.version}{before}：{_SOURCE_TEXT[evidence.source]}",
        evidence=evidence.model_dump(mode="json", exclude_none=True),
    )


def policy_rejected_finding(
    section: PolicyDocument | None, evidence: PolicyRejectedEvidence
) -> Finding:
    """The agent refused a bundle and keeps its applied version."""
    severity, rule_id = agent_rule(section, POLICY_REJECTED, Severity.HIGH)
    version = f"策略版本 {evidence.version}" if evidence.version else "策略包"
    kept = evidence.applied_version or "无"
    return Finding(
        kind="agent.policy_rejected",
        severity=severity,
        rule_id=rule_id,
        summary=(
            f"已拒绝{version}（{evidence.reason_code}）：{evidence.reason}；继续使用版本 {kept}"
        )[:500],
        evidence=evidence.model_dump(mode="json", exclude_none=True),
    )


def calendar_finding(section: PolicyDocument | None, coverage: CalendarCoverage) -> Finding | None:
    """The warning that the agent's holiday calendar runs out; None while it reaches far enough."""
    if coverage.state is CoverageState.EXPIRED:
        severity, rule_id = agent_rule(section, CALENDAR_EXPIRED, Severity.HIGH)
    else:
        severity, rule_id = agent_rule(section, CALENDAR_EXPIRING, Severity.MEDIUM)
    return coverage_finding("agent", coverage, severity, rule_id)


class _Observation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class SpoolDropObservation(_Observation):
    """The spool dropped events to stay under its limit (counts by severity)."""

    type: Literal["spool_drop"]
    dropped: dict[Severity, int]
    spool_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)


class DetectorStateObservation(_Observation):
    """A detector's health as the daemon found it."""

    type: Literal["detector_state"]
    detector: str
    state: Literal["ok", "degraded", "disabled", "failed"]
    reason: str = ""


class PolicyAppliedObservation(_Observation):
    type: Literal["policy_applied"]
    evidence: PolicyAppliedEvidence


class PolicyRejectedObservation(_Observation):
    type: Literal["policy_rejected"]
    evidence: PolicyRejectedEvidence


class CalendarCoverageObservation(_Observation):
    """How far the agent's holiday calendar reaches, seen on ``today``."""

    type: Literal["calendar_coverage"]
    today: date
    covered_until: date
    library_until: date
    policy_years: tuple[int, ...] = ()

    def coverage(self) -> CalendarCoverage:
        return CalendarCoverage(
            self.covered_until, self.library_until, self.policy_years, self.today
        )


SelfObservation = Annotated[
    SpoolDropObservation
    | DetectorStateObservation
    | PolicyAppliedObservation
    | PolicyRejectedObservation
    | CalendarCoverageObservation,
    Field(discriminator="type"),
]


class SelfDetector:
    """The agent's own rules over what the daemon and spool observe of themselves."""

    name: ClassVar[str] = "agent_self"
    policy_section: ClassVar[str] = "agent"
    description: ClassVar[str] = (
        "Reports the agent's own dropped events, degraded detectors, policy changes and "
        "a holiday calendar that runs out."
    )

    def evaluate(self, observation: Any, policy: PolicyDocument, now: datetime) -> list[Finding]:
        found: Finding | None
        if isinstance(observation, SpoolDropObservation):
            severity, rule_id = agent_rule(policy, SPOOL_DROPPED)
            found = spool_dropped_finding(
                observation.dropped, observation.spool_max_bytes, severity, rule_id
            )
        elif isinstance(observation, DetectorStateObservation):
            found = detector_degraded_finding(
                policy, observation.detector, observation.state, observation.reason
            )
        elif isinstance(observation, PolicyAppliedObservation):
            found = policy_applied_finding(policy, observation.evidence)
        elif isinstance(observation, CalendarCoverageObservation):
            found = calendar_finding(policy, observation.coverage())
        else:
            found = policy_rejected_finding(policy, observation.evidence)
        return [] if found is None else [found]

    def finalize(self, policy: PolicyDocument, now: datetime) -> list[Finding]:
        return []


@dataclass(frozen=True)
class SelfCheckSpec:
    """A case target (``agent.policy.cases.CaseTarget``) for the agent's own rules."""

    name: str = SelfDetector.name
    description: str = SelfDetector.description
    policy_section: str = SelfDetector.policy_section
    observation_type: Any = SelfObservation
    make_detector: Any = SelfDetector


SELF_CHECK: Final = SelfCheckSpec()
