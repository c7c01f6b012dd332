"""A realistic mix of every event kind an agent sends, with the evidence its detector writes.

Each kind's evidence is built with its real wire model (``agent.events`` and
the detectors' ``evidence.py``) and each template event is validated as an
``Event`` once; ``events`` then stamps copies with ids, seqs and times, so
building a bench's hundreds of thousands of events costs the client little.
The weights follow what a workstation sends in a day: mostly outreach flows
and DNS, account sessions and logins, heartbeats, some document findings.

``missing_kinds`` names agent kinds without a template, so a new detector kind
cannot silently fall out of the bench.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from agent.detectors.accounts import evidence as acc
from agent.detectors.documents import evidence as doc
from agent.detectors.outreach import evidence as out
from agent.events import (
    CalendarCoverageEvidence,
    DetectorDegradedEvidence,
    DetectorHealth,
    Event,
    Evidence,
    HeartbeatEvidence,
    IsolationEvidence,
    PolicyAppliedEvidence,
    PolicyRejectedEvidence,
    Severity,
    SpoolDroppedEvidence,
    StartedEvidence,
    StoppingEvidence,
    TestEvidence,
    UpgradeFailedEvidence,
    uuid7,
)
from agent.registry import EVIDENCE_MODELS
from collector.correlation.registry import made_by_collector

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
EARLIER = NOW - timedelta(minutes=5)
ACCOUNTS = ("wb_zhang", "wb_li", "wb_wang", "zhangsan")
SHA = "3f1a" * 16
Template = tuple[str, Severity, str | None, str, Evidence]


def _process(r: random.Random) -> out.ProcessEvidence:
    name = r.choice(("firefox-esr", "wps", "curl", "WeChat", "python3"))
    return out.ProcessEvidence(pid=r.randint(300, 60000), name=name, exe=f"/usr/bin/{name}",
                               cmdline=f"{name} --flag", user=r.choice(ACCOUNTS))


def _flow(r: random.Random, kind: str) -> Template:
    remote = f"203.0.113.{r.randint(1, 254)}"
    port = r.choice((443, 80, 53, 8080))
    return (kind, Severity.HIGH, "outreach.flow-outside",
            f"外联：{remote}:{port}（进程 curl）",
            out.FlowEvidence(
                interface="eth0", interface_class="wired", first_seen=EARLIER, last_seen=NOW,
                count=r.randint(1, 9), protocol=r.choice(("tcp", "udp")),
                local_address="198.18.3.21", local_port=r.randint(30000, 60000),
                remote_address=remote, remote_port=port, process=_process(r),
                uid=1000, query_name="www.example.com" if kind == "outreach.dns" else ""))


def _outreach_base(r: random.Random) -> dict[str, Any]:
    return {"interface": r.choice(("eth0", "wlan0", "usb0")), "interface_class": "wired",
            "first_seen": EARLIER, "last_seen": NOW, "count": 1}


def _account(r: random.Random) -> dict[str, Any]:
    return {"account": r.choice(ACCOUNTS), "role": "contractor", "sponsor": "lisi"}


def _finding_doc(r: random.Random, kind: str) -> Template:
    occurrences = [
        doc.DocumentOccurrence(part="正文", start=i * 40, end=i * 40 + 18,
                               excerpt="身份证号 11010519******1234", detail="公民身份号码")
        for i in range(r.randint(1, 6))
    ]
    action = kind.split(".")[1]
    return (kind, Severity.HIGH if action == "block" else Severity.MEDIUM,
            f"documents.{action}", "裁判文书含未脱敏的个人信息",
            doc.DocumentFindingEvidence(
                file_name=f"（2026）京0105民初{r.randint(1000, 9999)}号.docx",
                folder="/srv/publish/2026", sha256=SHA, size=r.randint(20000, 400000),
                verdict="needs_redaction", profile="judgment", action=action,
                basis="《关于人民法院在互联网公布裁判文书的规定》第十一条",
                occurrences=occurrences, occurrences_total=len(occurrences)))


def _templates(r: random.Random) -> dict[str, Callable[[], Template]]:
    """A builder per agent kind; each call makes one template with varied values."""
    return {
        "outreach.flow": lambda: _flow(r, "outreach.flow"),
        "outreach.dns": lambda: _flow(r, "outreach.dns"),
        "outreach.interface": lambda: ("outreach.interface", Severity.HIGH,
                                       "outreach.interface-unapproved", "出现未经批准的网卡 usb0",
                                       out.InterfaceEvidence(
                                           **_outreach_base(r), driver="rndis_host", bus="usb",
                                           up=True, carrier=True)),
        "outreach.wifi": lambda: ("outreach.wifi", Severity.HIGH, "outreach.wifi-associated",
                                  "无线网卡已关联热点", out.InterfaceEvidence(
                                      **_outreach_base(r), driver="iwlwifi", devtype="wlan",
                                      up=True, carrier=True)),
        "outreach.address": lambda: ("outreach.address", Severity.MEDIUM,
                                     "outreach.address-outside", "网卡获得内网以外的地址",
                                     out.AddressEvidence(**_outreach_base(r),
                                                         address="192.0.2.44", prefixlen=24)),
        "outreach.route": lambda: ("outreach.route", Severity.HIGH, "outreach.route-outside",
                                   "存在通往外网的路由", out.RouteEvidence(
                                       **_outreach_base(r), canary="203.0.113.1",
                                       gateway="192.0.2.1", source_address="192.0.2.44")),
        "outreach.dns_answer": lambda: ("outreach.dns_answer", Severity.MEDIUM,
                                        "outreach.dns-answer-outside", "域名解析到外网地址",
                                        out.DnsAnswerEvidence(
                                            **_outreach_base(r), resolver="198.18.0.53",
                                            name="update.example.com",
                                            outside_addresses=["203.0.113.7", "203.0.113.8"])),
        "outreach.proxy": lambda: ("outreach.proxy", Severity.MEDIUM, "outreach.proxy-outside",
                                   "配置了外网代理", out.ProxyEvidence(
                                       **_outreach_base(r), origin="/etc/environment",
                                       variable="https_proxy", value="http://192.0.2.9:3128",
                                       proxy_host="192.0.2.9")),
        "outreach.sharing": lambda: ("outreach.sharing", Severity.HIGH, "outreach.sharing",
                                     "本机开启了网络共享", out.SharingEvidence(
                                         **_outreach_base(r), ipv4_forwarding=True,
                                         ipv6_forwarding=False, masquerade=True,
                                         hotspot=["wlan0"])),
        "outreach.probe": lambda: ("outreach.probe", Severity.CRITICAL,
                                   "outreach.probe-reached", "探测到外网可达",
                                   out.ProbeEvidence(**_outreach_base(r), target="203.0.113.10",
                                                     port=443, method="tcp", outcome="reached",
                                                     rtt_ms=12.5)),
        "outreach.action": lambda: ("outreach.action", Severity.HIGH, "outreach.flow-outside",
                                    "阻断：203.0.113.10", out.ActionEvidence(
                                        action="block", target="203.0.113.10", dry_run=False,
                                        ok=True)),
        "outreach.isolation_applied": lambda: (
            "outreach.isolation_applied", Severity.HIGH, None, "主机已按管理员指令隔离至 18:30",
            IsolationEvidence(order_id=uuid.UUID(int=r.getrandbits(128)), sequence=3,
                              isolation_id=7, action="isolate", cause="order", expires_at=NOW,
                              requested_by="安全管理员", reason="疑似违规外联，先行隔离")),
        "outreach.isolation_lifted": lambda: (
            "outreach.isolation_lifted", Severity.MEDIUM, None, "主机隔离已按管理员指令解除",
            IsolationEvidence(order_id=uuid.UUID(int=r.getrandbits(128)), sequence=4,
                              isolation_id=7, action="lift", cause="order")),
        "outreach.isolation_refused": lambda: (
            "outreach.isolation_refused", Severity.HIGH, None, "拒绝执行隔离指令：签名无效",
            IsolationEvidence(reason_code="bad_signature", ok=False)),
        "outreach.flood": lambda: ("outreach.flood", Severity.HIGH, "outreach.flow-outside",
                                   "规则 outreach.flow-outside 在窗口内另有 40 次外联"
                                   "未逐条上报（已计数）",
                                   out.FloodEvidence(
                                       rule="outreach.flow-outside", window_start=EARLIER,
                                       window_end=NOW, suppressed=40,
                                       top=[f"203.0.113.{i}:443 ×{9 - i}" for i in range(1, 6)])),
        "outreach.lost": lambda: ("outreach.lost", Severity.MEDIUM, None, "外联观测丢失了记录",
                                  out.LostEvidence(lost=r.randint(1, 50), detail="ring overflow")),
        "account.login": lambda: ("account.login", Severity.MEDIUM,
                                  "accounts.login-outside-hours", "外包账号在非工作时间登录",
                                  acc.AccountLoginEvidence(
                                      **_account(r), local_time="22:14", day_kind="workday",
                                      service="sshd", remote_host="198.18.7.9",
                                      allowed_hours="08:30-18:00", source="journal")),
        "account.session": lambda: ("account.session", Severity.INFO, "accounts.session",
                                    "外包账号会话开始", acc.AccountSessionEvidence(
                                        **_account(r), action=r.choice(("open", "close")),
                                        session_id=str(r.randint(1, 400)), service="gdm",
                                        source="logind")),
        "account.privilege": lambda: ("account.privilege", Severity.HIGH,
                                      "accounts.privilege-used", "外包账号使用 sudo",
                                      acc.AccountPrivilegeEvidence(
                                          **_account(r), tool="sudo", outcome="success",
                                          target="root", command="/usr/bin/apt install x",
                                          tty="pts/0")),
        "account.group": lambda: ("account.group", Severity.HIGH, "accounts.forbidden-group",
                                  "外包账号属于禁止的用户组", acc.AccountGroupEvidence(
                                      **_account(r), forbidden=["sudo"],
                                      groups=["users", "sudo", "audio"])),
        "account.change": lambda: ("account.change", Severity.MEDIUM,
                                   "accounts.account-changed", "外包账号被加入用户组",
                                   acc.AccountChangeEvidence(**_account(r), action="group_add",
                                                             actor="root", group="adm")),
        "account.program": lambda: ("account.program", Severity.HIGH,
                                    "accounts.forbidden-program", "外包账号运行了禁止的程序",
                                    acc.AccountProgramEvidence(
                                        **_account(r), pid=r.randint(300, 60000), name="tcpdump",
                                        exe="/usr/bin/tcpdump", cmdline="tcpdump -i any",
                                        matched="tcpdump")),
        "account.removable": lambda: ("account.removable", Severity.HIGH,
                                      "accounts.removable-mount", "外包账号登录期间挂载了移动存储",
                                      acc.AccountRemovableEvidence(
                                          **_account(r), device="/dev/sdc1",
                                          mountpoint="/media/wb_zhang/U", vendor_id="0781",
                                          product_id="5581", serial="4C530001", approved=False,
                                          live_sessions=["5"])),
        "account.file": lambda: ("account.file", Severity.MEDIUM, "accounts.protected-path",
                                 "外包账号访问了受保护的路径", acc.AccountFileEvidence(
                                     **_account(r), path="/srv/cases/2026/卷宗.pdf",
                                     action="open", attribution="session",
                                     candidates=["wb_zhang"])),
        "account.persistence": lambda: ("account.persistence", Severity.HIGH,
                                        "accounts.persistence", "外包账号添加了自启动项",
                                        acc.AccountFileEvidence(
                                            **_account(r), path="/etc/cron.d/job",
                                            action="create", attribution="session")),
        "account.burst": lambda: ("account.burst", Severity.HIGH,
                                  "accounts.failed-login-burst", "短时间内多次登录失败",
                                  acc.AccountBurstEvidence(
                                      **_account(r), failures=12, window_s=300,
                                      first_failure=EARLIER, last_failure=NOW,
                                      followed_by_success=False, remote_hosts=["198.18.7.9"])),
        "account.tamper": lambda: ("account.tamper", Severity.CRITICAL, "accounts.tamper",
                                   "日志被清除", acc.AccountTamperEvidence(
                                       **_account(r), what="history_cleared",
                                       path="/home/wb_zhang/.bash_history")),
        "document.block": lambda: _finding_doc(r, "document.block"),
        "document.redact": lambda: _finding_doc(r, "document.redact"),
        "document.pseudonymize": lambda: _finding_doc(r, "document.pseudonymize"),
        "document.review": lambda: _finding_doc(r, "document.review"),
        "document.unreadable": lambda: ("document.unreadable", Severity.LOW, None,
                                        "文书无法读取（已加密）", doc.DocumentUnreadableEvidence(
                                            file_name="加密.docx", folder="/srv/publish/2026",
                                            size=r.randint(1000, 90000), error="encrypted")),
        "agent.heartbeat": lambda: ("agent.heartbeat", Severity.INFO, None, "心跳",
                                    HeartbeatEvidence(
                                        agent_version="1.4.0", uptime_s=r.uniform(60, 9e5),
                                        interval_s=60, policy_version="2026.12.01-3",
                                        spool_depth=r.randint(0, 40), spool_bytes=81920,
                                        events_dropped=0, rss_bytes=56_000_000,
                                        cpu_percent=0.3, detectors={
                                            name: DetectorHealth(state="ok")
                                            for name in ("outreach", "accounts", "documents")})),
        "agent.started": lambda: ("agent.started", Severity.INFO, None, "代理已启动",
                                  StartedEvidence(agent_version="1.4.0", pid=812,
                                                  policy_version="2026.12.01-3",
                                                  detectors=["outreach", "accounts",
                                                             "documents"])),
        "agent.stopping": lambda: ("agent.stopping", Severity.INFO, None, "代理正在停止",
                                   StoppingEvidence(reason="SIGTERM", uptime_s=86400.0)),
        "agent.spool_dropped": lambda: ("agent.spool_dropped", Severity.MEDIUM,
                                        "agent.spool-dropped", "缓存已满，丢弃了低级别事件",
                                        SpoolDroppedEvidence(dropped={Severity.INFO: 30},
                                                             spool_max_bytes=64 << 20)),
        "agent.detector_degraded": lambda: ("agent.detector_degraded", Severity.MEDIUM,
                                            "agent.detector-degraded", "检测器降级运行",
                                            DetectorDegradedEvidence(
                                                detector="outreach", state="degraded",
                                                reason="nftables 不可用")),
        "agent.calendar_expiring": lambda: ("agent.calendar_expiring", Severity.LOW,
                                            "agent.calendar-expiring", "节假日日历即将到期",
                                            CalendarCoverageEvidence(
                                                covered_until=date(2026, 12, 31),
                                                library_until=date(2026, 12, 31),
                                                policy_years=[2026], days_left=24)),
        "agent.calendar_expired": lambda: ("agent.calendar_expired", Severity.MEDIUM,
                                           "agent.calendar-expired", "节假日日历已到期",
                                           CalendarCoverageEvidence(
                                               covered_until=date(2025, 12, 31),
                                               library_until=date(2025, 12, 31),
                                               policy_years=[2025], days_left=-1)),
        "agent.policy_applied": lambda: ("agent.policy_applied", Severity.INFO,
                                         "agent.policy-applied", "已应用策略 2026.12.01-3",
                                         PolicyAppliedEvidence(
                                             version="2026.12.01-3", source="collector",
                                             kinds=["networks", "accounts", "documents"],
                                             sha256=SHA)),
        "agent.policy_rejected": lambda: ("agent.policy_rejected", Severity.HIGH,
                                          "agent.policy-rejected", "拒绝了签名无效的策略",
                                          PolicyRejectedEvidence(
                                              reason_code="bad_signature", reason="签名无效",
                                              applied_version="2026.12.01-3")),
        "agent.upgrade_failed": lambda: ("agent.upgrade_failed", Severity.HIGH,
                                         None, "代理升级至 0.14.0 失败：新版本未报告正常，已回退",
                                         UpgradeFailedEvidence(
                                             stage="health", reason_code="not_healthy",
                                             reason="新版本未在 120 秒内报告正常",
                                             version="0.14.0", running_version="0.13.0",
                                             rolled_back=True, sha256=SHA)),
        "agent.test": lambda: ("agent.test", Severity.LOW, None, "测试事件",
                               TestEvidence(note="pipeline check")),
    }


#: Share of each kind in a day's traffic from one workstation (kinds not named here: 1).
WEIGHTS: dict[str, float] = {
    "outreach.flow": 300, "outreach.dns": 120, "account.session": 80, "agent.heartbeat": 60,
    "account.login": 40, "account.file": 30, "account.privilege": 25, "document.redact": 20,
    "account.program": 10, "document.block": 8, "document.review": 8, "outreach.dns_answer": 8,
    "outreach.flood": 4, "outreach.action": 4, "account.removable": 3, "account.burst": 3,
    "document.unreadable": 3, "document.pseudonymize": 3, "outreach.interface": 2,
}


def agent_kinds() -> list[str]:
    return sorted(kind for kind in EVIDENCE_MODELS if not made_by_collector(kind))


def missing_kinds() -> list[str]:
    built = _templates(random.Random(0))
    return [kind for kind in agent_kinds() if kind not in built]


class Mix:
    """Validated template events, drawn by weight; ``events`` stamps fresh copies."""

    def __init__(self, seed: int = 17, per_kind: int = 8) -> None:
        r = random.Random(seed)
        builders = _templates(r)
        kinds = [kind for kind in agent_kinds() if kind in builders]
        probe = uuid.uuid4()
        self.templates: dict[str, list[dict[str, Any]]] = {}
        for kind in kinds:
            rows = []
            for i in range(per_kind):
                kind_, severity, rule_id, summary, evidence = builders[kind]()
                event = Event(  # validated as the collector will, once per template
                    id=uuid7(), seq=i + 1, time=NOW, agent_id=probe, host="ws-probe",
                    kind=kind_, severity=severity, rule_id=rule_id,
                    policy_version="2026.12.01-3", summary=summary,
                    evidence=evidence.model_dump(mode="json", exclude_none=True),
                )
                rows.append(event.model_dump(mode="json", exclude={"id", "seq", "agent_id",
                                                                    "host", "time"}))
            self.templates[kind] = rows
        self.kinds = kinds
        self.weights = [WEIGHTS.get(kind, 1) for kind in kinds]
        self.random = r

    def events(self, agent_id: str, first_seq: int, count: int, host: str) -> list[dict[str, Any]]:
        """``count`` events of one agent numbered from ``first_seq``, every kind by weight."""
        now = datetime.now(UTC).isoformat()
        # Every kind at least once per batch, so every evidence model is exercised.
        picks = list(self.kinds[:count])
        picks += self.random.choices(self.kinds, self.weights, k=count - len(picks))
        self.random.shuffle(picks)
        counter = itertools.count(first_seq)
        return [
            {**self.random.choice(self.templates[kind]), "id": str(uuid7()),
             "seq": next(counter), "time": now, "agent_id": agent_id, "host": host}
            for kind in picks
        ]
