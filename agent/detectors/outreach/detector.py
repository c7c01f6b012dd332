"""The outreach (违规外联) detector: pure verdicts on observations, repeats folded in a window.

1. ``evaluate`` turns one observation into candidate findings, one per
   enabled rule of its signal that fires (``candidates``) and is not
   excepted;
2. each candidate has a key (rule, interface, destination...); the first
   time a key is seen in a window it becomes an event at once, later times
   only raise its count;
3. ``finalize`` emits, for every key whose window has closed, one repeat
   event with the count, and one ``outreach.flood`` per rule that hit
   ``max_events_per_window`` (or the key table's bound) with what it
   suppressed. Nothing is dropped without being counted.

A finding about a link being there (an unapproved interface up, Wi-Fi
associated) opens an episode that lasts as long as the link: its key
outlives its window while the link stays (each window still reports its
repeats), and when the link is removed, set down or (Wi-Fi) loses its
carrier and stays gone ``EPISODE_QUIET_S``, ``finalize`` reports the
pending repeats and one event with ``ended`` that closes the episode (same
rule and interface, hence the same alert at the collector).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final

from pydantic import JsonValue

from agent.detectors.outreach import judgement as j
from agent.detectors.outreach.candidates import (
    Candidate,
    candidates,
    ended_link_episodes,
    ending_summary,
    exception_facts,
)
from agent.detectors.outreach.observations import ActionObservation, CounterObservation
from agent.detectors.outreach.policy import NetworksPolicy
from agent.events import CaptureOrder, Finding, Severity

#: Distinct keys kept for aggregation; beyond it new findings are only counted.
MAX_KEYS: Final = 10_000
#: How long a link stays gone before its episode closes; back sooner, the episode goes on
#: (a flapping cable or a replug is one episode, not a pair of events per flap).
EPISODE_QUIET_S: Final = 3.0

_ACTION_WORDS: Final = {
    "block": "已启用外联阻断",
    "unblock": "已撤销外联阻断",
    "link-down": "已禁用网络接口",
    "link-up": "已恢复网络接口",
}


@dataclass
class _Seen:
    candidate: Candidate
    first_seen: datetime
    last_seen: datetime
    window_end: datetime
    repeats: int = 0
    #: Every sighting since the episode began (first event included), across windows.
    sightings: int = 1
    #: A link episode whose link went: when, and why (removed, down, carrier-lost).
    ended_at: datetime | None = None
    ended: str = ""


@dataclass
class _Flood:
    window_start: datetime
    window_end: datetime
    admitted: int = 0
    suppressed: int = 0
    top: Counter[str] = field(default_factory=Counter)


class OutreachDetector:
    """Judges links, addresses, routes, flows, DNS, proxies, sharing and probes against policy."""

    name: ClassVar[str] = "outreach"
    policy_section: ClassVar[str] = "networks"
    description: ClassVar[str] = (
        "Catches workstations reaching networks outside the intranet lists (违规外联)."
    )

    def __init__(self) -> None:
        self._seen: dict[tuple[Any, ...], _Seen] = {}
        self._floods: dict[str, _Flood] = {}
        #: Windows that closed between two finalize calls, kept until reported.
        self._closed_floods: list[tuple[str, _Flood]] = []

    # -- the two entry points -------------------------------------------------

    def evaluate(self, observation: Any, policy: NetworksPolicy, now: datetime) -> list[Finding]:
        if isinstance(observation, ActionObservation):
            return [self._action(observation, policy, now)]
        if isinstance(observation, CounterObservation):
            return self._lost(observation, now)
        self._mark_ended(observation, now)
        findings = []
        for candidate in candidates(observation, policy):
            if j.excepted(candidate.rule, exception_facts(observation), now.date()) is not None:
                continue
            finding = self._record(candidate, policy, now)
            if finding is not None:
                findings.append(finding)
        return findings

    def idle(self) -> bool:
        """Nothing waits for ``finalize``: no episode, flood or closed flood is held."""
        return not (self._seen or self._floods or self._closed_floods)

    def finalize(self, policy: NetworksPolicy, now: datetime) -> list[Finding]:
        findings = []
        quiet = timedelta(seconds=EPISODE_QUIET_S)
        for key, seen in list(self._seen.items()):
            if seen.ended_at is not None:
                if now - seen.ended_at < quiet:
                    continue  # the link may come back: the episode would go on
                del self._seen[key]
                if seen.repeats:
                    findings.append(self._finding(seen, seen.repeats, repeat=True))
                findings.append(self._ending(seen, seen.ended_at))
                continue
            if seen.window_end > now:
                continue
            if seen.repeats:
                findings.append(self._finding(seen, seen.repeats, repeat=True))
            if seen.candidate.link is not None:
                # The link is still there: its episode goes on into a new window.
                seen.repeats = 0
                seen.window_end = now + timedelta(seconds=policy.settings.aggregate_window_s)
                continue
            del self._seen[key]
        for rule_id, flood in list(self._floods.items()):
            if flood.window_end <= now:
                del self._floods[rule_id]
                self._closed_floods.append((rule_id, flood))
        closed, self._closed_floods = self._closed_floods, []
        findings.extend(
            self._flood_finding(rule_id, flood, policy)
            for rule_id, flood in closed
            if flood.suppressed
        )
        return findings

    # -- aggregation ----------------------------------------------------------

    def _record(
        self, candidate: Candidate, policy: NetworksPolicy, now: datetime
    ) -> Finding | None:
        window = timedelta(seconds=policy.settings.aggregate_window_s)
        seen = self._seen.get(candidate.key)
        if seen is not None:
            seen.repeats += 1
            seen.sightings += 1
            seen.last_seen = now
            seen.candidate = candidate
            seen.ended_at, seen.ended = None, ""  # the link is back: the episode goes on
            return None
        flood = self._floods.get(candidate.rule.id)
        if flood is None or flood.window_end <= now:
            if flood is not None:
                self._closed_floods.append((candidate.rule.id, flood))
            flood = self._floods[candidate.rule.id] = _Flood(now, now + window)
        if flood.admitted >= policy.settings.max_events_per_window or len(self._seen) >= MAX_KEYS:
            flood.suppressed += 1
            flood.top[candidate.label] += 1
            return None
        flood.admitted += 1
        seen = self._seen[candidate.key] = _Seen(candidate, now, now, now + window)
        return self._finding(seen, 1, repeat=False, capture=_capture_order(candidate, policy))

    def _finding(
        self, seen: _Seen, count: int, *, repeat: bool, capture: CaptureOrder | None = None
    ) -> Finding:
        candidate = seen.candidate
        evidence = dict(candidate.evidence)
        evidence.update(
            first_seen=seen.first_seen.isoformat(),
            last_seen=seen.last_seen.isoformat(),
            count=count,
            repeat=repeat,
        )
        summary = candidate.summary
        if repeat:
            summary = f"{summary}（首次报告后又出现 {count} 次）"
        return Finding(
            kind=candidate.kind,
            severity=candidate.rule.severity,
            summary=summary[:500],
            rule_id=candidate.rule.id,
            evidence=evidence,
            time=seen.last_seen,
            capture=capture,
        )

    def _mark_ended(self, observation: Any, now: datetime) -> None:
        """Start the quiet time of the link episodes this observation says are over."""
        ended = ended_link_episodes(observation)
        if ended is None:
            return
        link, reasons = ended
        for seen in self._seen.values():
            candidate = seen.candidate
            if candidate.link != link or candidate.kind not in reasons:
                continue
            if seen.ended_at is None:
                seen.ended_at, seen.ended = now, reasons[candidate.kind]
            elif reasons[candidate.kind] == "removed":
                seen.ended = "removed"  # the kernel sets a link down before it deletes it

    def _ending(self, seen: _Seen, ended_at: datetime) -> Finding:
        """The event that closes a link's episode (see the module docstring)."""
        candidate = seen.candidate
        duration = max(0.0, (ended_at - seen.first_seen).total_seconds())
        evidence = dict(candidate.evidence)
        evidence.update(
            first_seen=seen.first_seen.isoformat(),
            last_seen=seen.last_seen.isoformat(),
            count=1,
            repeat=False,
            ended=seen.ended,
            ended_at=ended_at.isoformat(),
            duration_s=round(duration, 3),
            sightings=seen.sightings,
        )
        return Finding(
            kind=candidate.kind,
            severity=candidate.rule.severity,
            summary=ending_summary(candidate, seen.ended, duration, seen.sightings)[:500],
            rule_id=candidate.rule.id,
            evidence=evidence,
            time=ended_at,
        )

    def _flood_finding(self, rule_id: str, flood: _Flood, policy: NetworksPolicy) -> Finding:
        rule = next((r for r in policy.rules if r.id == rule_id), None)
        severity = rule.severity if rule is not None else Severity.HIGH
        top: list[JsonValue] = [f"{label} ×{n}" for label, n in flood.top.most_common(20)]
        return Finding(
            kind="outreach.flood",
            severity=severity,
            summary=f"规则 {rule_id} 在窗口内另有 {flood.suppressed} 次外联未逐条上报（已计数）",
            rule_id=rule_id,
            evidence={
                "rule": rule_id,
                "window_start": flood.window_start.isoformat(),
                "window_end": flood.window_end.isoformat(),
                "suppressed": flood.suppressed,
                "top": top,
            },
            time=flood.window_end,
        )

    # -- facts for exceptions, actions, losses ---------------------------------

    @staticmethod
    def _action(obs: ActionObservation, policy: NetworksPolicy, now: datetime) -> Finding:
        rule = next((r for r in policy.rules if r.id == obs.rule_id), None)
        severity = rule.severity if rule is not None else Severity.HIGH
        word = _ACTION_WORDS[obs.action]
        if obs.dry_run:
            summary = f"演练模式：本应执行“{word}”（{obs.target}），未实际执行"
        elif obs.ok:
            summary = f"{word}：{obs.target}"
        else:
            summary = f"执行“{word}”失败：{obs.target}：{obs.detail}"
        return Finding(
            kind="outreach.action",
            severity=severity,
            summary=summary[:500],
            rule_id=obs.rule_id if rule is not None else None,
            evidence={
                "action": obs.action,
                "target": obs.target,
                "dry_run": obs.dry_run,
                "ok": obs.ok,
                "detail": obs.detail,
            },
            time=now,
        )

    @staticmethod
    def _lost(obs: CounterObservation, now: datetime) -> list[Finding]:
        if obs.lost <= 0:
            return []
        return [
            Finding(
                kind="outreach.lost",
                severity=Severity.MEDIUM,
                summary=f"内核记录的外联数据包中有 {obs.lost} 个未能读取（缓冲区溢出），已计数",
                evidence={"lost": obs.lost, "detail": obs.detail},
                time=now,
            )
        ]


def _capture_order(candidate: Candidate, policy: NetworksPolicy) -> CaptureOrder | None:
    """The capture a rule with ``capture: true`` asks for: the outside peer, on its interface."""
    if not candidate.rule.capture:
        return None
    peer = candidate.evidence.get("remote_address")
    interface = candidate.evidence.get("interface")
    if peer is None and interface is None:
        return None
    bounds = policy.settings.capture
    return CaptureOrder(
        peer=peer,
        interface=interface,
        duration_s=bounds.duration_s,
        max_packets=bounds.max_packets,
        max_bytes=bounds.max_bytes,
        payload=bounds.payload,
    )
