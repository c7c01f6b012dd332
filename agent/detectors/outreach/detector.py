"""The outreach (违规外联) detector: pure verdicts on observations, repeats folded in a window.

1. ``evaluate`` turns one observation into candidate findings, one per
   enabled rule of its signal that fires and is not excepted;
2. each candidate has a key (rule, interface, destination...); the first
   time a key is seen in a window it becomes an event at once, later times
   only raise its count;
3. ``finalize`` emits, for every key whose window has closed, one repeat
   event with the count, and one ``outreach.flood`` per rule that hit
   ``max_events_per_window`` (or the key table's bound) with what it
   suppressed. Nothing is dropped without being counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final

from pydantic import JsonValue

from agent.detectors.outreach import judgement as j
from agent.detectors.outreach.observations import (
    ActionObservation,
    AddressObservation,
    CounterObservation,
    DnsAnswerObservation,
    FlowObservation,
    LinkFacts,
    LinkObservation,
    ProbeObservation,
    ProxyObservation,
    RouteObservation,
    SharingObservation,
)
from agent.detectors.outreach.policy import NetworksPolicy, OutreachRule
from agent.events import Finding, Severity

#: Distinct keys kept for aggregation; beyond it new findings are only counted.
MAX_KEYS: Final = 10_000

_ACTION_WORDS: Final = {
    "block": "已启用外联阻断",
    "unblock": "已撤销外联阻断",
    "link-down": "已禁用网络接口",
    "link-up": "已恢复网络接口",
}


@dataclass
class _Candidate:
    rule: OutreachRule
    kind: str
    key: tuple[Any, ...]
    summary: str
    evidence: dict[str, Any]
    label: str


@dataclass
class _Seen:
    candidate: _Candidate
    first_seen: datetime
    last_seen: datetime
    window_end: datetime
    repeats: int = 0


@dataclass
class _Flood:
    window_start: datetime
    window_end: datetime
    admitted: int = 0
    suppressed: int = 0
    top: Counter[str] = field(default_factory=Counter)


def _link_evidence(link: LinkFacts | None) -> dict[str, Any]:
    if link is None:
        return {}
    evidence: dict[str, Any] = {"interface": link.name, "interface_class": j.classify(link)}
    if link.mac:
        evidence["interface_mac"] = link.mac
    if link.usb_id:
        evidence["interface_usb_id"] = link.usb_id
    return evidence


def _link_facts(link: LinkFacts | None) -> dict[str, Any]:
    if link is None:
        return {}
    return {
        "interface.name": link.name,
        "interface.class": j.classify(link),
        "interface.mac": link.mac,
        "interface.usb_id": link.usb_id,
    }


def _where(link: LinkFacts | None) -> str:
    return f"接口 {link.name}（{j.classify(link)}）" if link is not None else "接口未知"


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
        findings = []
        for candidate in self._candidates(observation, policy):
            if j.excepted(candidate.rule, self._facts(observation), now.date()) is not None:
                continue
            finding = self._record(candidate, policy, now)
            if finding is not None:
                findings.append(finding)
        return findings

    def finalize(self, policy: NetworksPolicy, now: datetime) -> list[Finding]:
        findings = []
        for key, seen in list(self._seen.items()):
            if seen.window_end > now:
                continue
            del self._seen[key]
            if seen.repeats:
                findings.append(self._finding(seen, seen.repeats, repeat=True))
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
        self, candidate: _Candidate, policy: NetworksPolicy, now: datetime
    ) -> Finding | None:
        window = timedelta(seconds=policy.settings.aggregate_window_s)
        seen = self._seen.get(candidate.key)
        if seen is not None:
            seen.repeats += 1
            seen.last_seen = now
            seen.candidate = candidate
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
        return self._finding(seen, 1, repeat=False)

    def _finding(self, seen: _Seen, count: int, *, repeat: bool) -> Finding:
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

    # -- one observation, its candidates --------------------------------------

    def _candidates(self, obs: Any, policy: NetworksPolicy) -> list[_Candidate]:
        if isinstance(obs, LinkObservation):
            return self._link(obs, policy)
        if isinstance(obs, AddressObservation):
            return self._address(obs, policy)
        if isinstance(obs, RouteObservation):
            return self._route(obs, policy)
        if isinstance(obs, FlowObservation):
            return self._flow(obs, policy)
        if isinstance(obs, DnsAnswerObservation):
            return self._dns_answer(obs, policy)
        if isinstance(obs, ProxyObservation):
            return self._proxy(obs, policy)
        if isinstance(obs, SharingObservation):
            return self._sharing(obs, policy)
        if isinstance(obs, ProbeObservation):
            return self._probe(obs, policy)
        raise TypeError(f"not an outreach observation: {type(obs).__name__}")

    def _link(self, obs: LinkObservation, policy: NetworksPolicy) -> list[_Candidate]:
        if obs.change == "removed":
            return []
        link = obs.link
        evidence = {
            **_link_evidence(link),
            "driver": link.driver,
            "devtype": link.devtype,
            "bus": link.bus,
            "up": obs.up,
            "carrier": obs.carrier,
        }
        out = []
        if obs.up:
            for rule in policy.rules_for("interface"):
                if j.unapproved_for(rule, link, policy):
                    out.append(
                        _Candidate(
                            rule,
                            "outreach.interface",
                            (rule.id, link.name, link.mac),
                            f"发现未经批准的网络接口已启用：{link.name}（{j.classify(link)}"
                            f"{'，驱动 ' + link.driver if link.driver else ''}）",
                            evidence,
                            link.name,
                        )
                    )
        if obs.carrier and j.classify(link) == "wifi" and not policy.settings.wireless_allowed:
            for rule in policy.rules_for("wifi"):
                out.append(
                    _Candidate(
                        rule,
                        "outreach.wifi",
                        (rule.id, link.name, link.mac),
                        f"无线网卡 {link.name} 已连接无线网络，策略禁止使用无线",
                        evidence,
                        link.name,
                    )
                )
        return out

    def _address(self, obs: AddressObservation, policy: NetworksPolicy) -> list[_Candidate]:
        address = j.parse_ip(obs.address)
        if obs.removed or address is None or j.inside(address, policy):
            return []
        evidence = {**_link_evidence(obs.link), "address": obs.address, "prefixlen": obs.prefixlen}
        return [
            _Candidate(
                rule,
                "outreach.address",
                (rule.id, obs.link.name, obs.address),
                f"{_where(obs.link)}获得内网范围以外的地址 {obs.address}/{obs.prefixlen}",
                evidence,
                obs.address,
            )
            for rule in policy.rules_for("address")
        ]

    def _route(self, obs: RouteObservation, policy: NetworksPolicy) -> list[_Candidate]:
        if not obs.reachable or obs.link is None:
            return []
        gateway = j.parse_ip(obs.gateway) if obs.gateway else None
        gateway_ok = gateway is None or not policy.gateways or gateway in policy.gateways
        if j.approved(obs.link, policy) and gateway_ok:
            return []
        evidence = {
            **_link_evidence(obs.link),
            "canary": obs.canary,
            "gateway": obs.gateway,
            "source_address": obs.source,
        }
        via = f"，网关 {obs.gateway}" if obs.gateway else ""
        return [
            _Candidate(
                rule,
                "outreach.route",
                (rule.id, obs.link.name, obs.gateway),
                f"外部地址 {obs.canary} 的路由经由未经批准的{_where(obs.link)}{via}",
                evidence,
                f"{obs.link.name} {obs.gateway}",
            )
            for rule in policy.rules_for("route")
        ]

    def _flow(self, obs: FlowObservation, policy: NetworksPolicy) -> list[_Candidate]:
        destination = j.parse_ip(obs.destination)
        if destination is None or j.always_allowed(destination):
            return []
        evidence: dict[str, Any] = {
            **_link_evidence(obs.link),
            "protocol": obs.protocol,
            "local_address": obs.source,
            "local_port": obs.source_port,
            "remote_address": obs.destination,
            "remote_port": obs.destination_port,
            "hook": obs.hook,
            "process_note": obs.process_note,
            "uid": obs.uid,
            "query_name": obs.query_name,
        }
        if obs.process is not None:
            evidence["process"] = obs.process.model_dump()
        who = obs.process.name if obs.process is not None else f"uid {obs.uid}"
        port = f":{obs.destination_port}" if obs.destination_port is not None else ""
        target = f"{obs.protocol} {obs.destination}{port}"
        process = f"进程 {obs.process.name}（{obs.process.pid}）" if obs.process else "进程未知"
        label = f"{target} {who}"
        is_dns = obs.protocol in {"udp", "tcp"} and obs.destination_port == 53
        if is_dns and policy.resolver_set and destination not in policy.resolver_set:
            dns = [
                _Candidate(
                    rule,
                    "outreach.dns",
                    (rule.id, obs.destination, obs.protocol, who),
                    f"向未经批准的 DNS 服务器 {obs.destination} 发出查询"
                    f"{'（' + obs.query_name + '）' if obs.query_name else ''}，{process}",
                    evidence,
                    label,
                )
                for rule in policy.rules_for("dns")
                if self._protocol_ok(rule, obs)
            ]
            if dns:
                return dns
        if j.inside(destination, policy):
            return []
        verb = "转发" if obs.hook == "forward" else "发起"
        return [
            _Candidate(
                rule,
                "outreach.flow",
                (rule.id, obs.destination, obs.destination_port, obs.protocol, who),
                f"{verb}到内网以外地址的新连接：{target}，{process}，{_where(obs.link)}",
                evidence,
                label,
            )
            for rule in policy.rules_for("flow")
            if self._protocol_ok(rule, obs)
        ]

    @staticmethod
    def _protocol_ok(rule: OutreachRule, obs: FlowObservation) -> bool:
        return not rule.match.protocols or obs.protocol in rule.match.protocols

    def _dns_answer(self, obs: DnsAnswerObservation, policy: NetworksPolicy) -> list[_Candidate]:
        if not j.in_zones(obs.name, policy):
            return []
        outside = [
            a
            for a in obs.addresses
            if (ip := j.parse_ip(a)) is not None and not j.inside(ip, policy)
        ]
        if not outside:
            return []
        evidence = {"resolver": obs.resolver, "name": obs.name, "outside_addresses": outside}
        return [
            _Candidate(
                rule,
                "outreach.dns_answer",
                (rule.id, obs.name.lower(), tuple(outside)),
                f"内网域名 {obs.name} 被解析到内网以外的地址 {', '.join(outside[:4])}"
                f"（解析服务器 {obs.resolver}）",
                evidence,
                obs.name,
            )
            for rule in policy.rules_for("dns_answer")
        ]

    def _proxy(self, obs: ProxyObservation, policy: NetworksPolicy) -> list[_Candidate]:
        host = j.proxy_host(obs.value)
        if j.proxy_inside(host, policy):
            return []
        evidence = {
            "origin": obs.origin,
            "variable": obs.variable,
            "value": obs.value,
            "proxy_host": host,
        }
        return [
            _Candidate(
                rule,
                "outreach.proxy",
                (rule.id, obs.origin, obs.variable, host),
                f"代理设置指向内网以外：{obs.origin} 中 {obs.variable}={host}",
                evidence,
                host,
            )
            for rule in policy.rules_for("proxy")
        ]

    def _sharing(self, obs: SharingObservation, policy: NetworksPolicy) -> list[_Candidate]:
        what = []
        if obs.ipv4_forwarding:
            what.append("IPv4 转发")
        if obs.ipv6_forwarding:
            what.append("IPv6 转发")
        if obs.masquerade:
            what.append("地址伪装（NAT）")
        what.extend(f"热点 {h}" for h in obs.hotspot)
        if not what:
            return []
        evidence = {
            "ipv4_forwarding": obs.ipv4_forwarding,
            "ipv6_forwarding": obs.ipv6_forwarding,
            "masquerade": obs.masquerade,
            "hotspot": list(obs.hotspot),
        }
        key_state = (obs.ipv4_forwarding, obs.ipv6_forwarding, obs.masquerade, tuple(obs.hotspot))
        return [
            _Candidate(
                rule,
                "outreach.sharing",
                (rule.id, *key_state),
                f"本机开启了网络共享：{'、'.join(what)}",
                evidence,
                "、".join(what),
            )
            for rule in policy.rules_for("sharing")
        ]

    def _probe(self, obs: ProbeObservation, policy: NetworksPolicy) -> list[_Candidate]:
        if obs.outcome != "verified":
            return []
        evidence = {
            **_link_evidence(obs.link),
            "target": obs.target,
            "port": obs.port,
            "method": obs.method,
            "outcome": obs.outcome,
            "detail": obs.detail,
            "rtt_ms": obs.rtt_ms,
        }
        return [
            _Candidate(
                rule,
                "outreach.probe",
                (rule.id, obs.link.name, obs.target, obs.method),
                f"外联探测成功：经{_where(obs.link)}以 {obs.method.upper()} 到达外网探测服务器 "
                f"{obs.target}（应答已验证）",
                evidence,
                f"{obs.link.name} {obs.method}",
            )
            for rule in policy.rules_for("probe")
        ]

    # -- facts for exceptions, actions, losses ---------------------------------

    @staticmethod
    def _facts(obs: Any) -> dict[str, Any]:
        facts: dict[str, Any] = _link_facts(getattr(obs, "link", None))
        if isinstance(obs, FlowObservation):
            facts.update(
                {
                    "remote.address": obs.destination,
                    "remote.port": obs.destination_port,
                    "protocol": obs.protocol,
                    "dns.name": obs.query_name or None,
                }
            )
            if obs.process is not None:
                facts.update(
                    {
                        "process.name": obs.process.name,
                        "process.exe": obs.process.exe,
                        "process.user": obs.process.user,
                    }
                )
        elif isinstance(obs, ProxyObservation):
            facts["proxy.host"] = j.proxy_host(obs.value)
        elif isinstance(obs, DnsAnswerObservation):
            facts["dns.name"] = obs.name
        elif isinstance(obs, RouteObservation | ProbeObservation):
            facts["remote.address"] = getattr(obs, "canary", None) or getattr(obs, "target", None)
        return facts

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
