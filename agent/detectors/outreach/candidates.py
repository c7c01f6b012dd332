"""What each observation could be reported as: one candidate finding per rule that fires.

Pure, one function per signal (link, address, route, flow and DNS query,
DNS answer, proxy, sharing, probe); the detector drops the excepted ones
and aggregates the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from agent.detectors.outreach import judgement as j
from agent.detectors.outreach.observations import (
    AddressObservation,
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


@dataclass
class Candidate:
    """A finding a rule would make of one observation, before exceptions and aggregation."""

    rule: OutreachRule
    kind: str
    key: tuple[Any, ...]
    summary: str
    evidence: dict[str, Any]
    label: str
    #: (name, mac) of the link whose presence this finding is about: its episode ends with it.
    link: tuple[str, str] | None = None


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


def _link(obs: LinkObservation, policy: NetworksPolicy) -> list[Candidate]:
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
                    Candidate(
                        rule,
                        "outreach.interface",
                        (rule.id, link.name, link.mac),
                        f"发现未经批准的网络接口已启用：{link.name}（{j.classify(link)}"
                        f"{'，驱动 ' + link.driver if link.driver else ''}）",
                        evidence,
                        link.name,
                        (link.name, link.mac),
                    )
                )
    if obs.carrier and j.classify(link) == "wifi" and not policy.settings.wireless_allowed:
        for rule in policy.rules_for("wifi"):
            out.append(
                Candidate(
                    rule,
                    "outreach.wifi",
                    (rule.id, link.name, link.mac),
                    f"无线网卡 {link.name} 已连接无线网络，策略禁止使用无线",
                    evidence,
                    link.name,
                    (link.name, link.mac),
                )
            )
    return out


def ended_link_episodes(obs: Any) -> tuple[tuple[str, str], dict[str, str]] | None:
    """The link an observation says is gone, and which of its episodes end, with the reason.

    Removed or set down, a link ends both its interface and its Wi-Fi
    episode; a wireless link that lost its carrier ends only the Wi-Fi one.
    """
    if not isinstance(obs, LinkObservation):
        return None
    link = (obs.link.name, obs.link.mac)
    if obs.change == "removed":
        return link, {"outreach.interface": "removed", "outreach.wifi": "removed"}
    if not obs.up:
        return link, {"outreach.interface": "down", "outreach.wifi": "down"}
    if not obs.carrier:
        return link, {"outreach.wifi": "carrier-lost"}
    return None


_ENDINGS: Final = {"removed": "已拔出或删除", "down": "已停用", "carrier-lost": "已断开无线网络"}


def ending_summary(candidate: Candidate, reason: str, duration_s: float, sightings: int) -> str:
    """The Chinese summary of the event that closes a link's episode."""
    name = candidate.link[0] if candidate.link else candidate.label
    what = "无线网卡" if candidate.kind == "outreach.wifi" else "未经批准的网络接口"
    return (
        f"{what} {name} {_ENDINGS.get(reason, reason)}，本次外联风险结束"
        f"（持续 {_duration(duration_s)}，期间出现 {sightings} 次）"
    )


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole} 秒"
    if whole < 3600:
        return f"{whole // 60} 分 {whole % 60} 秒"
    return f"{whole // 3600} 小时 {whole % 3600 // 60} 分"


def _address(obs: AddressObservation, policy: NetworksPolicy) -> list[Candidate]:
    address = j.parse_ip(obs.address)
    if obs.removed or address is None or j.inside(address, policy):
        return []
    evidence = {**_link_evidence(obs.link), "address": obs.address, "prefixlen": obs.prefixlen}
    return [
        Candidate(
            rule,
            "outreach.address",
            (rule.id, obs.link.name, obs.address),
            f"{_where(obs.link)}获得内网范围以外的地址 {obs.address}/{obs.prefixlen}",
            evidence,
            obs.address,
        )
        for rule in policy.rules_for("address")
    ]


def _route(obs: RouteObservation, policy: NetworksPolicy) -> list[Candidate]:
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
        Candidate(
            rule,
            "outreach.route",
            (rule.id, obs.link.name, obs.gateway),
            f"外部地址 {obs.canary} 的路由经由未经批准的{_where(obs.link)}{via}",
            evidence,
            f"{obs.link.name} {obs.gateway}",
        )
        for rule in policy.rules_for("route")
    ]


def _flow(obs: FlowObservation, policy: NetworksPolicy) -> list[Candidate]:
    destination = j.parse_ip(obs.destination)
    if destination is None or j.always_allowed(destination) or obs.verdict == "granted":
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
        "gid": obs.gid,
        "user": obs.user,
        "cgroup": obs.cgroup,
        "unit": obs.unit,
        "held": obs.held,
        "verdict": obs.verdict,
        "grant": obs.grant,
    }
    if obs.process is not None:
        evidence["process"] = obs.process.model_dump()
    who = obs.process.name if obs.process is not None else obs.unit or f"uid {obs.uid}"
    port = f":{obs.destination_port}" if obs.destination_port is not None else ""
    target = f"{obs.protocol} {obs.destination}{port}"
    process = f"进程 {obs.process.name}（{obs.process.pid}）" if obs.process else _unknown(obs)
    if obs.verdict in {"dropped", "dry-run"}:
        dropped = "已拦截" if obs.verdict == "dropped" else "演练模式，未拦截"
        process += f"；目的地址仅允许授权程序访问（{obs.grant}），{dropped}"
    label = f"{target} {who}"
    is_dns = obs.protocol in {"udp", "tcp"} and obs.destination_port == 53
    if is_dns and policy.resolver_set and destination not in policy.resolver_set:
        dns = [
            Candidate(
                rule,
                "outreach.dns",
                (rule.id, obs.destination, obs.protocol, who),
                f"向未经批准的 DNS 服务器 {obs.destination} 发出查询"
                f"{'（' + obs.query_name + '）' if obs.query_name else ''}，{process}",
                evidence,
                label,
            )
            for rule in policy.rules_for("dns")
            if _protocol_ok(rule, obs)
        ]
        if dns:
            return dns
    if j.inside(destination, policy):
        return []
    verb = "转发" if obs.hook == "forward" else "发起"
    return [
        Candidate(
            rule,
            "outreach.flow",
            (rule.id, obs.destination, obs.destination_port, obs.protocol, who),
            f"{verb}到内网以外地址的新连接：{target}，{process}，{_where(obs.link)}",
            evidence,
            label,
        )
        for rule in policy.rules_for("flow")
        if _protocol_ok(rule, obs)
    ]


def _unknown(obs: FlowObservation) -> str:
    """What names the sender when its process is unknown: the unit, else the user."""
    known = [
        f"服务 {obs.unit}" if obs.unit else "",
        f"用户 {obs.user or obs.uid}" if obs.uid is not None else "",
    ]
    known = [k for k in known if k]
    return "进程未知" + (f"（{'，'.join(known)}）" if known else "")


def _protocol_ok(rule: OutreachRule, obs: FlowObservation) -> bool:
    return not rule.match.protocols or obs.protocol in rule.match.protocols


def _dns_answer(obs: DnsAnswerObservation, policy: NetworksPolicy) -> list[Candidate]:
    if not j.in_zones(obs.name, policy):
        return []
    outside = [
        a for a in obs.addresses if (ip := j.parse_ip(a)) is not None and not j.inside(ip, policy)
    ]
    if not outside:
        return []
    evidence = {"resolver": obs.resolver, "name": obs.name, "outside_addresses": outside}
    return [
        Candidate(
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


def _proxy(obs: ProxyObservation, policy: NetworksPolicy) -> list[Candidate]:
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
        Candidate(
            rule,
            "outreach.proxy",
            (rule.id, obs.origin, obs.variable, host),
            f"代理设置指向内网以外：{obs.origin} 中 {obs.variable}={host}",
            evidence,
            host,
        )
        for rule in policy.rules_for("proxy")
    ]


def _sharing(obs: SharingObservation, policy: NetworksPolicy) -> list[Candidate]:
    what = []
    if obs.ipv4_forwarding:
        what.append("IPv4 转发")
    elif obs.ipv4_forwarding_interfaces:
        what.append(f"IPv4 转发（接口 {'、'.join(obs.ipv4_forwarding_interfaces)}）")
    if obs.ipv6_forwarding:
        what.append("IPv6 转发")
    elif obs.ipv6_forwarding_interfaces:
        what.append(f"IPv6 转发（接口 {'、'.join(obs.ipv6_forwarding_interfaces)}）")
    if obs.masquerade:
        what.append("地址伪装（NAT）")
    what.extend(f"热点 {h}" for h in obs.hotspot)
    if not what:
        return []
    evidence = {
        "ipv4_forwarding": obs.ipv4_forwarding,
        "ipv6_forwarding": obs.ipv6_forwarding,
        "ipv4_forwarding_interfaces": list(obs.ipv4_forwarding_interfaces),
        "ipv6_forwarding_interfaces": list(obs.ipv6_forwarding_interfaces),
        "masquerade": obs.masquerade,
        "hotspot": list(obs.hotspot),
    }
    key_state = (
        obs.ipv4_forwarding,
        obs.ipv6_forwarding,
        tuple(obs.ipv4_forwarding_interfaces),
        tuple(obs.ipv6_forwarding_interfaces),
        obs.masquerade,
        tuple(obs.hotspot),
    )
    return [
        Candidate(
            rule,
            "outreach.sharing",
            (rule.id, *key_state),
            f"本机开启了网络共享：{'、'.join(what)}",
            evidence,
            "、".join(what),
        )
        for rule in policy.rules_for("sharing")
    ]


def _probe(obs: ProbeObservation, policy: NetworksPolicy) -> list[Candidate]:
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
        Candidate(
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


def candidates(obs: Any, policy: NetworksPolicy) -> list[Candidate]:
    """One candidate per enabled rule of the observation's signal that fires."""
    judge = _BY_OBSERVATION.get(type(obs))
    if judge is None:
        raise TypeError(f"not an outreach observation: {type(obs).__name__}")
    return judge(obs, policy)


#: The verdict function of each observation type the rules judge.
_BY_OBSERVATION: Final[dict[type, Callable[[Any, NetworksPolicy], list[Candidate]]]] = {
    LinkObservation: _link,
    AddressObservation: _address,
    RouteObservation: _route,
    FlowObservation: _flow,
    DnsAnswerObservation: _dns_answer,
    ProxyObservation: _proxy,
    SharingObservation: _sharing,
    ProbeObservation: _probe,
}


def exception_facts(obs: Any) -> dict[str, Any]:
    """The fields an exception can match, from one observation (``judgement.excepted``)."""
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
