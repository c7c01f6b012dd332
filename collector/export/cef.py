"""ArcSight CEF lines, projected from the ECS document (``collector.export.ecs``).

``CEF:0|courtguard|courtguard|<version>|<kind>|<Chinese name>|<0-10>|<extension>``,
UTF-8. In the header ``\\`` and ``|`` are escaped with a backslash; in
extension values ``\\`` and ``=`` are, and line breaks become ``\\n`` / ``\\r``
(CEF Implementation Standard, "Character Encoding"). Extension keys are fixed
here, so they need no escaping. The whole evidence rides in ``cs6``
(label ``evidence``) as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import orjson

from agent.events import Severity
from agent.version import __version__

#: CEF severity (0-10) by courtguard severity.
CEF_SEVERITY: Final[Mapping[str, int]] = {
    Severity.INFO.value: 1, Severity.LOW.value: 3, Severity.MEDIUM.value: 5,
    Severity.HIGH.value: 8, Severity.CRITICAL.value: 10,
}

#: A Chinese name for every kind an event or an alert change can have (the CEF Name).
KIND_NAMES: Final[Mapping[str, str]] = {
    "agent.heartbeat": "终端心跳",
    "agent.started": "终端代理启动",
    "agent.stopping": "终端代理停止",
    "agent.spool_dropped": "终端缓存溢出丢弃事件",
    "agent.detector_degraded": "检测模块降级",
    "agent.silent": "终端失联",
    "agent.superseded": "终端重新注册取代旧身份",
    "agent.host_conflict": "终端主机指纹冲突",
    "agent.calendar_expiring": "终端节假日日历即将到期",
    "agent.calendar_expired": "终端节假日日历已到期",
    "collector.calendar_expiring": "采集器节假日日历即将到期",
    "collector.calendar_expired": "采集器节假日日历已到期",
    "agent.policy_applied": "终端策略已生效",
    "agent.policy_rejected": "终端拒绝策略",
    "agent.upgrade_failed": "终端升级失败",
    "collector.policy_rejected": "采集器拒绝策略",
    "collector.export_lagging": "SIEM 输出积压",
    "collector.export_recovered": "SIEM 输出恢复",
    "collector.document_published": "已公开文书需撤回或更正",
    "agent.test": "测试事件",
    "account.login": "外包账号越界登录",
    "account.session": "外包账号会话",
    "account.privilege": "外包账号提权",
    "account.group": "外包账号属于禁止的组",
    "account.change": "外包账号变更",
    "account.program": "外包账号运行禁止的程序",
    "account.removable": "外包账号在线时挂载移动存储",
    "account.file": "外包账号访问受监视文件",
    "account.persistence": "外包账号修改自启动项",
    "account.burst": "外包账号连续登录失败",
    "account.tamper": "外包账号清除日志或干扰代理",
    "account.shared": "外包账号多机同时在线",
    "account.first_seen": "外包账号首次出现",
    "account.daily_score": "外包账号当日异常累积",
    "document.block": "文书禁止公开",
    "document.redact": "文书需要脱敏",
    "document.pseudonymize": "文书需要匿名化",
    "document.review": "文书需要人工审核",
    "document.unreadable": "文书无法检查",
    "outreach.flow": "违规外联连接",
    "outreach.dns": "违规外联域名解析",
    "outreach.interface": "出现可外联网卡",
    "outreach.wifi": "出现无线网卡",
    "outreach.address": "网卡获得外网地址",
    "outreach.route": "出现外网路由",
    "outreach.dns_answer": "域名解析到外网地址",
    "outreach.proxy": "配置了外网代理",
    "outreach.sharing": "网络共享或热点",
    "outreach.probe": "外联探测成功",
    "outreach.action": "外联处置动作",
    "outreach.flood": "外联事件过多已汇总",
    "outreach.lost": "外联观测丢失",
    "outreach.isolation_applied": "主机隔离已生效",
    "outreach.isolation_lifted": "主机隔离已解除",
    "outreach.isolation_refused": "主机隔离指令被拒绝",
    "alert.opened": "告警产生",
    "alert.count_raised": "告警次数增加",
    "alert.status_changed": "告警状态变更",
    "alert.assigned": "告警已指派",
}

#: ECS field (dotted) to CEF extension key; the rest of the ECS document is not repeated.
CEF_KEYS: Final[Mapping[str, str]] = {
    "event.id": "externalId",
    "message": "msg",
    "event.dataset": "cat",
    "host.name": "dvchost",
    "agent.id": "deviceExternalId",
    "source.ip": "src",
    "source.port": "spt",
    "source.address": "shost",
    "destination.ip": "dst",
    "destination.port": "dpt",
    "destination.address": "dhost",
    "destination.domain": "dhost",
    "network.transport": "proto",
    "user.name": "suser",
    "user.target.name": "duser",
    "process.name": "sproc",
    "process.pid": "spid",
    "file.name": "fname",
    "file.path": "filePath",
    "file.hash.sha256": "fileHash",
    "file.size": "fsize",
    "event.outcome": "outcome",
    "error.message": "reason",
}

_TIME_KEYS: Final[Mapping[str, str]] = {"@timestamp": "rt", "event.start": "start",
                                        "event.end": "end"}


def escape_header(value: str) -> str:
    text = value.replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def escape_value(value: str) -> str:
    text = value.replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def _flat(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and key != "evidence":
            out.update(_flat(value, f"{path}."))
        else:
            out[path] = value
    return out


def _millis(value: str) -> str:
    return str(int(datetime.fromisoformat(value).timestamp() * 1000))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def to_cef(document: Mapping[str, Any]) -> str:
    """One ECS document (an event's or an alert change's) as a CEF line, without newline."""
    flat = _flat(document)
    action = str(flat["event.action"])
    severity = CEF_SEVERITY.get(str(flat.get("log.level")), 5)
    name = KIND_NAMES.get(action) or str(flat.get("message", action))
    header = "|".join(escape_header(part) for part in (
        "CEF:0", "courtguard", "courtguard", __version__, action, name, str(severity)))
    extension: dict[str, str] = {}
    for field, key in _TIME_KEYS.items():
        value = flat.get(field)
        if isinstance(value, str):
            try:
                extension[key] = _millis(value)
            except ValueError:
                continue
    for field, key in CEF_KEYS.items():
        value = flat.get(field)
        if value is not None and value != "" and key not in extension:
            extension[key] = _text(value)
    labelled: list[tuple[str, str, Any]] = [
        ("cs1", "rule", flat.get("rule.id")),
        ("cs2", "policyVersion", flat.get("courtguard.policy_version")),
        ("cn1", "sequence", flat.get("event.sequence")),
    ]
    alert = document.get("courtguard", {}).get("alert")
    if alert is not None:
        labelled += [("cn2", "alertId", alert["id"]), ("cs3", "alertStatus", alert["status"]),
                     ("cn3", "alertCount", alert["count"])]
    evidence = document.get("courtguard", {}).get("evidence")
    if evidence:
        labelled.append(("cs6", "evidence", orjson.dumps(evidence).decode()))
    for key, label, value in labelled:
        if value is not None:
            extension[f"{key}Label"] = label
            extension[key] = _text(value)
    body = " ".join(f"{key}={escape_value(value)}" for key, value in extension.items())
    return f"{header}|{body}"
