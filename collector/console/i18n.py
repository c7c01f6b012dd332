"""The console's words in Simplified Chinese (default) and English.

Templates call ``t("English text")``; Chinese comes from ``ZH``, English is
the key itself, except for ``severity.*``, ``status.*``, ``field.*``-style
keys, which have English entries in ``EN``. A key missing from ``ZH`` shows in
English rather than failing (tests/collector/console/test_i18n.py checks that
every key the templates use is translated).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from agent.detectors.documents.checker.scanner import VERDICT_LABELS
from collector.notify.message import REASON_LABELS

LANGUAGES: Final = ("zh", "en")

ZH: Final[dict[str, str]] = {
    # navigation and chrome
    "courtguard console": "courtguard 安全管理台",
    "Alerts": "告警", "Events": "事件", "Agents": "终端代理", "Reports": "报表",
    "Policies": "策略", "Audit trail": "审计记录", "Users": "用户", "Sign out": "退出登录",
    "Sign in": "登录", "User name": "用户名", "Password": "密码", "Role": "角色",
    "Please sign in.": "请先登录。",
    "Your role may not open this page.": "您的角色无权访问此页面。",
    "The sign-in form expired; please try again.": "登录表单已过期，请重试。",
    "Too many sign-in attempts from this address; wait a minute.":
        "该地址登录尝试过多，请一分钟后再试。",
    "This account is locked after repeated failures until {until}.":
        "该账号因多次登录失败已锁定，至 {until} 解锁。",
    "Wrong user name or password, or the account is disabled.":
        "用户名或密码错误，或账号已停用。",
    "The directory service is unavailable; try again later or contact an administrator.":
        "目录服务暂不可用，请稍后再试或联系管理员。",
    "Your directory account is in no group with a console role; ask an administrator for "
    "access.": "您的目录账号不属于任何已授权的控制台角色组，请联系管理员开通。",
    "No such event.": "没有该事件。", "No such alert.": "没有该告警。",
    "The address holds an invalid value: {names}.": "地址中的参数无效：{names}。",
    "Back": "返回", "Error": "错误", "Times are Beijing time (Asia/Shanghai).":
        "时间均为北京时间（Asia/Shanghai）。",
    # filters and lists
    "Filter": "筛选", "Clear": "清除", "From": "开始时间", "To": "结束时间", "Kind": "类型",
    "Severity": "严重程度", "Minimum severity": "最低严重程度", "Status": "状态",
    "Host": "主机", "Account": "账号", "Rule": "规则", "Text": "关键词", "Any": "全部",
    "Time": "时间", "Summary": "摘要", "Agent": "代理", "Next page": "下一页",
    "No events match.": "没有符合条件的事件。", "No alerts match.": "没有符合条件的告警。",
    "Save this filter as": "保存当前筛选为", "Save": "保存", "Saved filters": "已保存的筛选",
    "Delete": "删除", "Counts": "数量统计", "Total": "合计", "Open alerts": "未关闭告警",
    "All alerts": "全部告警", "Assignee": "负责人", "Count": "次数", "First seen": "首次出现",
    "Last seen": "最近出现", "Title": "标题", "Resolution": "处置结论", "Comment": "说明",
    "Reason": "原因", "Action": "操作", "Apply to selected": "应用于所选告警",
    "Select all": "全选", "Done: {n} alert(s) changed.": "已完成：{n} 条告警已更新。",
    "Some alerts were not changed:": "以下告警未能更新：",
    "Changed": "已更新",
    # alert actions
    "acknowledge": "确认", "start": "开始处置", "close": "关闭", "reopen": "重新打开",
    "assign": "指派", "unacknowledge": "退回待确认",
    "Acknowledge": "确认", "Start work": "开始处置", "Close": "关闭", "Reopen": "重新打开",
    "Assign": "指派", "History": "处理记录", "Events of this alert": "该告警的事件",
    "Alert": "告警", "Event": "事件", "Evidence": "证据", "Related events": "相关事件",
    "Same host": "同一主机", "Same account": "同一账号", "Same rule": "同一规则",
    "None": "无", "Policy version": "策略版本", "Received": "接收时间", "Sequence": "序号",
    "Part of alert": "所属告警", "Reopened": "重新打开次数", "Acknowledged": "确认时间",
    "Closed": "关闭时间", "Created": "创建时间",
    # overview (安全态势总览) and entity pages
    "Overview": "态势总览", "Security overview": "安全态势总览",
    "Figures as of {time}": "数据截至 {time}", "Key period: {name}": "重点时期：{name}",
    "Live": "实时更新中", "Live updates interrupted; reconnecting": "实时更新中断，正在重连",
    "Open high and critical alerts": "未关闭的高危和严重告警",
    "No open high or critical alerts.": "没有未关闭的高危或严重告警。",
    "Pillar": "业务板块", "Findings": "违规发现", "New / closed alerts": "新增 / 关闭告警",
    "Median minutes to acknowledge": "确认耗时中位数（分钟）",
    "New alerts per day, last 30 days": "近 30 天每日新增告警",
    "Findings today": "今日违规发现", "alerts / events": "告警数 / 事件数",
    "Agent fleet": "终端代理状态", "Degraded": "降级", "Silent": "失联",
    "Duty": "值班", "Key period": "重点时期", "none in force": "当前不在重点时期",
    "No alerting policy is in force; no duty rota.": "未启用告警策略，没有值班安排。",
    "On duty now": "当前值班", "Next shift": "下一班次", "unassigned": "未排班",
    "Top hosts (7 days)": "违规最多的主机（7 天）",
    "Top accounts (7 days)": "违规最多的账号（7 天）",
    "Top rules (7 days)": "触发最多的规则（7 天）",
    "window.today": "今日", "window.7d": "近 7 天", "window.30d": "近 30 天",
    "pillar.outreach": "违规外联", "pillar.account": "外包账号", "pillar.document": "裁判文书",
    "pillar.agent": "代理自身",
    "position.on_duty": "值班员", "position.backup": "备班", "position.leader": "值班领导",
    "No such host.": "没有该主机。", "No such account.": "账号名无效。",
    "No such document.": "文书哈希无效（应为 64 位十六进制 SHA-256）。",
    "Operating system": "操作系统", "Enrolled": "注册时间",
    "Isolation and capture": "隔离与取证", "Result": "结果", "Target": "目标",
    "Host isolation": "主机隔离（一键隔离）", "Until": "隔离至", "Requested by": "申请人",
    "Approved by": "批准人", "Ended by": "解除人", "Requested": "申请时间", "No.": "编号",
    "Order": "指令编号", "Minutes": "时长（分钟）", "Isolate host": "隔离主机",
    "Approve isolation": "批准隔离", "Lift isolation": "解除隔离", "Cancel request": "撤销申请",
    "Reason for lifting": "解除原因（可选）", "Not isolated.": "未隔离。",
    "A second admin must approve.": "须由另一名管理员批准后生效。",
    "after approval, for {minutes} minutes": "批准后隔离 {minutes} 分钟",
    "What the agent reported": "终端执行情况",
    "Everything but the collector, the intranet resolvers and the policy's isolation.allow "
    "list is dropped until the time ends or the isolation is lifted.":
        "隔离期间，除收集端、内网 DNS 服务器和策略 isolation.allow 列表外的所有通信均被阻断，"
        "直至到期或被解除。",
    "isolation.pending": "待批准", "isolation.active": "隔离中", "isolation.expired": "已到期",
    "isolation.lifted": "已解除", "isolation.cancelled": "已取消",
    "dry run": "演练（未实际执行）", "done": "已执行", "failed": "执行失败",
    "Policy versions applied": "已应用的策略版本", "Previous version": "原版本",
    "Source": "来源", "Interfaces and addresses seen": "出现过的网络接口和地址",
    "Interface": "网络接口", "Class / address": "类别 / 地址",
    "Contractor sessions": "外包账号会话", "Session": "会话", "Service": "服务",
    "From host": "来源主机", "session.open": "登录", "session.close": "退出",
    "session.present": "在线（代理启动时）", "Timeline": "时间线",
    "Roster entry (who uses it, who answers for it)": "名册登记（谁使用、谁负责）",
    "Responsible staff member (sponsor)": "责任人", "Allowed hosts": "允许使用的主机",
    "Allowed hours": "允许时段", "workdays only": "仅工作日", "Contract": "合同期",
    "Not in the roster of the accounts policy.": "该账号不在外包账号策略的名册中。",
    "Hosts used": "使用过的主机", "Sessions opened": "登录次数",
    "Shared-account correlations": "共用账号等关联分析", "Sessions": "会话",
    "Privilege use": "提权操作", "Tool": "工具", "Command": "命令", "Hosts": "主机",
    "Document": "文书", "File names seen": "出现过的文件名",
    "Hosts that checked it": "检查过该文书的主机",
    "No host reported this document.": "没有主机报告过该文书。",
    "Clerks' decisions": "书记员判定",
    "Clerks who checked it": "检查过该文书的书记员", "Excerpt": "摘录（已脱敏）",
    "No clerk has checked this document on the document check page.":
        "尚无书记员在文书检查页检查过该文书。",
    "No clerk has decided on this document yet.": "尚无书记员对该文书作出判定。",
    "Verdict": "结论", "Basis": "依据", "File name": "文件名", "Folder": "目录",
    # one wording of a verdict everywhere: the checker command's, the clerk's page's
    **{f"verdict.{code}": words for code, words in VERDICT_LABELS.items()},
    # audit
    "Actor": "操作人", "Via": "途径", "Object": "对象", "From value": "原值",
    "To value": "新值", "Client address": "客户端地址", "No entries.": "没有记录。",
    # agents
    "Online": "在线", "Silent since": "失联起始", "Version": "版本",
    "Upgrade to {version} failed": "升级至 {version} 失败",
    "Degraded detectors": "降级的检测器", "Spool backlog": "本地缓存积压",
    "Last event": "最近通信", "Group": "分组", "Open gaps": "序号缺口",
    "The holiday calendar covers days only up to {until}; add the {year} holiday schedule "
    "published by the General Office of the State Council to the policy.":
        "节假日日历仅覆盖至 {until}，请在策略中补充 {year} 年国务院办公厅公布的放假安排",
    "The holiday calendar covers days only up to {until}; holidays and make-up workdays after "
    "it are judged as plain weekdays and weekends. Add the {year} holiday schedule published "
    "by the General Office of the State Council to the policy.":
        "节假日日历仅覆盖至 {until}，此后的节假日和调休上班日按普通工作日和周末判断；"
        "请在策略中补充 {year} 年国务院办公厅公布的放假安排",
    "Key period now: {name}. Silent agents are marked.":
        "当前处于重点时期：{name}。失联终端已标红。",
    "No agents enrolled.": "尚无已注册的代理。",
    "SILENT DURING KEY PERIOD": "重点时期失联",
    "agent.online": "在线", "agent.silent": "失联", "agent.revoked": "已吊销",
    "agent.never_seen": "从未上线", "agent.superseded": "已被取代",
    "{n} earlier identities": "另有 {n} 个旧身份",
    "Identity history": "身份沿革", "Earlier identity": "旧身份", "Later identity": "新身份",
    "Superseded": "被取代时间", "Agent ID": "代理 ID", "Relation": "关系",
    "This identity was superseded by a re-enrollment of the same host.":
        "此身份已被同一主机的重新注册取代，其凭据已失效。",
    # policies
    "Author": "作者", "Note": "备注", "Agents on it": "使用该版本的代理",
    "Created at": "创建时间", "No policy versions published.": "尚未发布策略版本。",
    "Action taken": "动作", "Target group": "目标分组", "All groups": "全部分组",
    "Signature": "签名", "Verified": "已通过验证", "Not checked": "未验证（无签名密钥）",
    "Failed verification": "未通过验证，不使用也不下发",
    # reports
    "Daily report": "日报", "Monthly report": "月报", "Day": "日", "Month": "月",
    "Date": "日期", "Show": "查看", "Download CSV": "下载 CSV", "Print": "打印",
    "Outreach (违规外联) incidents": "违规外联事件（告警）",
    "Outreach events": "违规外联相关事件",
    "Outsourced-account findings": "外包账号违规发现",
    "Document findings": "文书检查发现", "Documents with findings": "涉及文书数",
    "Documents blocked": "拦截文书数", "Alerts opened": "新增告警",
    "Alerts by status": "告警状态分布", "Acknowledged alerts": "已确认告警",
    "Median time to acknowledge (min)": "确认耗时中位数（分钟）",
    "90th percentile time to acknowledge (min)": "确认耗时 90 分位（分钟）",
    "Events per day by kind": "按类型的每日事件", "Top hosts": "事件最多的主机",
    "Top rules": "触发最多的规则", "Period": "统计期间",
    "family.outreach": "违规外联", "family.account": "外包账号", "family.document": "文书",
    "family.agent": "代理自身",
    # users
    "Display name": "显示名", "Create user": "新建用户", "Disabled": "已停用",
    "Locked until": "锁定至", "Last sign-in": "最近登录", "Disable": "停用",
    "Directory": "目录", "Local": "本地",
    "Enable": "启用", "New password": "新密码", "Set password": "设置密码",
    "Create": "创建", "yes": "是", "no": "否",
    "role.admin": "管理员", "role.reviewer": "审核员", "role.auditor": "审计员",
    # document check (文书检查, the clerk's page) and clerks' decisions
    "Document check": "文书检查", "Clerk decisions": "书记员处理记录", "role.clerk": "书记员",
    "doccheck.intro":
        "上传裁判文书，查看上网公布前须隐名、删除或不得公开的内容，并下载修正稿。文件在服务器上检查后不保存；"
        "检查记录只保存文件的哈希值、隐名后的文件名、结论和数量。",
    "Drop .docx, .pdf, .ofd or .txt files here, or choose them:":
        "将 .docx、.pdf、.ofd 或 .txt 文件拖到此处，或点击选择：",
    "At most {n} files and {size} in all.": "一次最多 {n} 个文件，合计不超过 {size}。",
    "At most {n} files at a time.": "一次最多检查 {n} 个文件。",
    "The upload is too large: at most {size} in all; check fewer files at a time.":
        "上传的文件过大：合计不得超过 {size}，请分批检查。",
    "Only .docx, .pdf, .ofd and .txt files (and .doc, .wps) can be checked.":
        "只能检查 .docx、.pdf、.ofd、.txt 文件（以及 .doc、.wps）。",
    "The upload could not be read; at most {n} files at a time.":
        "无法读取上传的内容；一次最多 {n} 个文件。",
    "Choose at least one file.": "请至少选择一个文件。", "The file is empty.": "文件是空的。",
    "Chosen: {names}": "已选择：{names}", "Check": "开始检查", "Standard": "审查标准",
    "The policy's standard": "策略默认标准",
    "profile.spc-2016": "法释〔2016〕19号", "profile.spc-2024": "2024 年起隐名要求",
    "My checks": "我的检查记录", "File (names hidden)": "文件（已隐名）",
    "Could not be checked": "未能检查", "No checks yet.": "还没有检查记录。",
    "Check more files": "继续检查其他文件", "File": "文件",
    "This check result is no longer kept (one hour); upload the file again.":
        "检查结果已不再保留（保留一小时），请重新上传文件。",
    "The corrected copy:": "修正稿结论：",
    "Download the corrected copy": "下载修正稿", "as .txt": "下载 .txt 文本",
    "doccheck.copy_only":
        "原 {kind} 文件本身未作任何修改：修正稿是按其文字新生成的文档，不保留原版式。",
    "Findings by rule and person": "按规则和人员分组的发现", "{n} places": "{n} 处",
    "Original": "原文", "Replacement": "替换为", "Where": "位置", "Decision": "处理",
    "(needs a person)": "（需人工处理）", "Not applicable": "不适用",
    "Apply again": "恢复适用", "Why it does not apply": "不适用的理由",
    "Mark not applicable": "标记为不适用",
    "The document with its findings": "文书原文（已标出发现）",
    "(long: only the lines with findings are shown)": "（篇幅较长，只显示含发现的段落）",
    "Choose the findings the decision is about.": "请选择要处理的发现。",
    "The reason holds a character that cannot be stored.": "理由中含有无法保存的字符。",
    "doccheck.decisions_intro":
        "书记员标记为不适用（或恢复适用）的每一处发现，最新的在前；每条也记入审计记录。",
    "Clerk": "书记员", "Masked excerpt": "脱敏摘录",
    "No decisions yet.": "还没有处理记录。",
    "decision.not_applicable": "不适用", "decision.applicable": "恢复适用",
    # triage on the list
    "Group by": "分组方式", "No grouping": "不分组", "group.host": "主机", "group.rule": "规则",
    "group.account": "账号", "Alerts by {group}": "按{group}分组的告警",
    "Highest severity": "最高严重程度",
    "Keyboard: j / k move the selection, a acknowledge, s start work, c close (then 1–6 picks "
    "the resolution, type the comment, Enter), o open, x tick for the bulk form.":
        "键盘快捷键：j / k 上下移动选中行，a 确认，s 开始处置，c 关闭（再按 1–6 选择处置结论，"
        "输入说明后按回车），o 打开告警，x 勾选以便批量操作。",
    "The request failed; reload the page and try again.": "请求失败，请刷新页面后重试。",
    "Close with resolution:": "关闭，处置结论：", "Close alert": "关闭告警", "Cancel": "取消",
    "No such action.": "没有该操作。", "Alert #{id}: {action} done.": "告警 #{id}：已{action}。",
    "at least {n}": "至少 {n}", "(counted over the newest matches of this text)":
        "（仅统计该关键词最近的匹配事件）",
    "What it means": "规则说明", "Legal basis": "依据",
    "Not stated in the policy": "策略未注明",
    "(the policy has this text in English only)": "（策略中仅有英文说明）",
    "The current policy has no such rule.": "当前策略中没有该规则。",
    "(newest event, {time})": "（最近一次事件，{time}）",
    "refusal.invalid_transition": "该告警当前状态不允许此操作，可能已被他人处理，请刷新。",
    "refusal.not_found": "没有该告警。",
    "refusal.newer_alert_open": "同一告警已有更新的未关闭告警，请处理那一条。",
    "refusal.comment_required": "请填写说明。", "refusal.comment_too_long": "说明过长。",
    "refusal.reason_required": "请填写原因。", "refusal.reason_too_long": "原因过长。",
    "refusal.assignee_required": "请填写负责人。",
    "refusal.assignee_too_long": "负责人过长。",
    "refusal.resolution_invalid": "请选择处置结论。",
    "refusal.unknown_action": "没有该操作。",
    # audit actions and channels on an alert's history
    "audit.alert.open": "生成告警", "audit.alert.acknowledge": "确认",
    "audit.alert.unacknowledge": "退回待确认", "audit.alert.start": "开始处置",
    "audit.alert.close": "关闭", "audit.alert.reopen": "重新打开", "audit.alert.assign": "指派",
    "via.console": "管理台", "via.api": "接口", "via.cli": "命令行", "via.router": "告警路由",
    "via.ingest": "事件接收",
    # codes inside evidence
    **{f"value.verdict.{code}": words for code, words in VERDICT_LABELS.items()},
    "value.action.block": "拦截", "value.action.redact": "脱敏",
    "value.action.pseudonymize": "隐名处理", "value.action.review": "人工审核",
    "value.action.open": "开始", "value.action.close": "结束", "value.action.present": "在线",
    "value.outcome.success": "成功", "value.outcome.failure": "失败",
    "value.outcome.verified": "已验证（确认可达互联网）", "value.outcome.forged": "应答伪造",
    "value.what.login": "登录", "value.what.privilege": "提权",
    # severities, statuses, resolutions
    "severity.info": "提示", "severity.low": "低", "severity.medium": "中",
    "severity.high": "高", "severity.critical": "严重",
    "status.new": "待确认", "status.acknowledged": "已确认", "status.in_progress": "处置中",
    "status.closed": "已关闭",
    "resolution.true_positive": "属实", "resolution.false_positive": "误报",
    "resolution.authorised": "已授权", "resolution.duplicate": "重复",
    "resolution.policy_exception": "策略例外", "resolution.other": "其他",
    # evidence fields
    "field.interface": "网络接口", "field.interface_class": "接口类别",
    "field.interface_mac": "MAC 地址", "field.interface_usb_id": "USB 标识",
    "field.process": "进程", "field.pid": "进程号", "field.name": "名称",
    "field.exe": "可执行文件", "field.cmdline": "命令行", "field.user": "用户",
    "field.remote_address": "目的地址", "field.remote_port": "目的端口",
    "field.local_address": "本地地址", "field.local_port": "本地端口",
    "field.protocol": "协议", "field.account": "账号", "field.role": "账号角色",
    "field.sponsor": "责任人", "field.file_name": "文件名", "field.folder": "目录",
    "field.sha256": "SHA-256", "field.size": "大小（字节）", "field.verdict": "结论",
    "field.action": "动作", "field.basis": "依据", "field.occurrences": "发现位置",
    "field.occurrences_total": "发现总数", "field.excerpt": "脱敏摘录", "field.part": "部分",
    "field.start": "起始偏移", "field.end": "结束偏移", "field.detail": "细节",
    "field.first_seen": "首次出现", "field.last_seen": "最近出现", "field.count": "次数",
    "field.held": "首包挂起核实", "field.unit": "systemd 单元", "field.cgroup": "控制组",
    "field.gid": "组号", "field.grant": "程序授权",
    "field.query_name": "查询域名", "field.local_time": "本地时间", "field.day_kind": "日期类型",
    "field.service": "服务", "field.remote_host": "来源主机", "field.tool": "工具",
    "field.outcome": "结果", "field.target": "目标", "field.command": "命令",
    "field.path": "路径", "field.device": "设备", "field.hosts": "主机",
    "field.score": "评分", "field.reason": "原因", "field.detector": "检测器",
    "field.state": "状态", "field.note": "备注", "field.error": "错误",
    "field.profile": "规范", "field.matched": "命中", "field.mountpoint": "挂载点",
    # evidence captures (取证抓包)
    "Evidence capture": "抓包取证",
    "Capture packets": "抓包取证",
    "Duration (seconds)": "时长（秒）",
    "Download pcap": "下载 pcap 文件",
    "Packets": "数据包数", "Bytes": "字节数", "Ordered by": "下令人", "Completed": "完成时间",
    "capture.requested": "已下令，等待终端执行",
    "capture.uploading": "终端正在上传",
    "capture.complete": "已收到，哈希已校验",
    "The capture was ordered; the agent starts it with its next report.":
        "已下发抓包取证指令，终端将在下次上报时开始抓包。",
    "This event already has a capture, ordered or received.":
        "该事件已有抓包取证（已下令或已收到）。",
    "This event names no outside address or interface to capture, or the duration is not 1 to "
    "300 seconds.": "该事件没有可抓包的外部地址或网卡，或时长不在 1 至 300 秒之间。",
    "This event has no complete evidence capture.": "该事件没有已完成的抓包取证文件。",
    "Only headers are kept unless the policy asks for payload; each download is audited.":
        "除非策略要求保留载荷，仅保存报文头；每次下载都记入审计记录。",
    # notification delivery (the alert page's 通知记录, the overview's warning)
    "Notifications": "通知记录", "Queued": "生成时间", "Receiver": "接收人",
    "Position notified": "通知岗位", "Delivery attempts": "发送尝试",
    "({n} alerts)": "（共 {n} 条告警）", "fixed addressees": "固定收件人",
    "no channel left": "无可用渠道", "not yet attempted": "尚未发送",
    "No notification has carried this alert (no route matched, it was silenced or inhibited, "
    "or the group wait has not passed).":
        "尚无通知包含此告警（未匹配任何路由、已被静默或抑制，或尚在分组等待中）。",
    **{f"notify.reason.{code}": words for code, words in REASON_LABELS.items()},
    "notify.status.pending": "待发送", "notify.status.sending": "发送中",
    "notify.status.sent": "已送达", "notify.status.failed": "无法送达",
    "notify.status.digested": "已并入汇总通知",
    "notify.outcome.delivered": "已送达", "notify.outcome.failed": "失败",
    "notify.outcome.retrying": "重试中", "notify.outcome.undeliverable": "无法送达",
    "Notifications are not reaching the duty officers": "告警通知未能送达值班人员",
    "Last 24 hours: {failed} failed delivery attempts, {undeliverable} notifications "
    "undeliverable.": "近 24 小时：发送失败 {failed} 次，无法送达的通知 {undeliverable} 条。",
    "Newest: {time}, channel {channel}.": "最近一次：{time}，渠道 {channel}。",
    "See its notification log": "查看通知记录",
    "The alerting policy's receivers use channels collector.toml does not define: {channels}. "
    "Every notification through them fails; add a [notify_channels.<name>] table for each and "
    "restart (docs/alerting.md, “Channels collector.toml must define”).":
        "告警策略的接收人使用了 collector.toml 未配置的通知渠道：{channels}。经这些渠道的通知都会"
        "失败；请在 collector.toml 中为每个渠道添加 [notify_channels.<渠道名>] 配置后重启"
        "（见 docs/alerting.md「collector.toml 须定义的通知渠道」）。",
}

EN: Final[dict[str, str]] = {
    "severity.info": "info", "severity.low": "low", "severity.medium": "medium",
    "severity.high": "high", "severity.critical": "critical",
    "status.new": "new", "status.acknowledged": "acknowledged",
    "status.in_progress": "in progress", "status.closed": "closed",
    "resolution.true_positive": "true positive", "resolution.false_positive": "false positive",
    "resolution.authorised": "authorised", "resolution.duplicate": "duplicate",
    "resolution.policy_exception": "policy exception", "resolution.other": "other",
    "agent.online": "online", "agent.silent": "silent", "agent.revoked": "revoked",
    "isolation.pending": "awaiting approval", "isolation.active": "isolated",
    "isolation.expired": "expired", "isolation.lifted": "lifted",
    "isolation.cancelled": "cancelled",
    "agent.never_seen": "never seen", "agent.superseded": "superseded",
    "role.admin": "admin", "role.reviewer": "reviewer", "role.auditor": "auditor",
    "family.outreach": "outreach", "family.account": "accounts", "family.document": "documents",
    "family.agent": "agent",
    "window.today": "today", "window.7d": "7 days", "window.30d": "30 days",
    "pillar.outreach": "outreach", "pillar.account": "contractor accounts",
    "pillar.document": "judgment documents", "pillar.agent": "agent",
    "position.on_duty": "on duty", "position.backup": "backup", "position.leader": "leader",
    "notify.reason.group": "new alert", "notify.reason.repeat": "still open",
    "notify.reason.escalation": "escalation", "notify.reason.digest": "digest",
    "notify.status.pending": "pending", "notify.status.sending": "sending",
    "notify.status.sent": "delivered", "notify.status.failed": "undeliverable",
    "notify.status.digested": "folded into a digest",
    "notify.outcome.delivered": "delivered", "notify.outcome.failed": "failed",
    "notify.outcome.retrying": "retrying", "notify.outcome.undeliverable": "undeliverable",
    "session.open": "opened", "session.close": "closed", "session.present": "present at start",
    "verdict.publishable": "publishable", "verdict.needs_redaction": "needs redaction",
    "verdict.do_not_publish": "do not publish", "verdict.needs_review": "needs review",
    "role.clerk": "clerk", "profile.spc-2016": "SPC 2016 rules",
    "profile.spc-2024": "SPC 2024 practice", "decision.not_applicable": "not applicable",
    "decision.applicable": "applied again",
    "doccheck.intro": "Upload judgments to see what must be hidden or deleted before they go "
                      "online, and download a corrected copy. The files are checked on the "
                      "collector and not kept; only each file's hash, its name with names "
                      "hidden, the verdict and the counts go into your history.",
    "doccheck.copy_only": "The original {kind} file itself was not changed: the corrected copy "
                          "is a new document holding its text, without the original layout.",
    "doccheck.decisions_intro": "Every finding a clerk marked as not applicable (or applied "
                                "again), newest first. Each is also in the audit trail.",
    "group.host": "host", "group.rule": "rule", "group.account": "account",
    "refusal.invalid_transition": "the alert's status does not allow this; someone may have "
                                  "handled it already: reload",
    "refusal.not_found": "no such alert",
    "refusal.newer_alert_open": "a newer alert with the same fingerprint is open; work on that",
    "refusal.comment_required": "a comment is required",
    "refusal.comment_too_long": "the comment is too long",
    "refusal.reason_required": "a reason is required", "refusal.reason_too_long": "too long",
    "refusal.assignee_required": "an assignee is required",
    "refusal.assignee_too_long": "the assignee is too long",
    "refusal.resolution_invalid": "pick a resolution", "refusal.unknown_action": "no such action",
    "audit.alert.open": "opened", "audit.alert.acknowledge": "acknowledged",
    "audit.alert.unacknowledge": "unacknowledged", "audit.alert.start": "started",
    "audit.alert.close": "closed", "audit.alert.reopen": "reopened",
    "audit.alert.assign": "assigned",
    "via.console": "console", "via.api": "API", "via.cli": "CLI", "via.router": "router",
    "via.ingest": "ingest",
    "value.verdict.publishable": "publishable", "value.verdict.needs_redaction":
        "needs redaction", "value.verdict.do_not_publish": "do not publish",
    "value.verdict.needs_review": "needs review",
    "value.action.block": "block", "value.action.redact": "redact",
    "value.action.pseudonymize": "pseudonymize", "value.action.review": "review",
    "value.action.open": "open", "value.action.close": "close", "value.action.present": "present",
    "value.outcome.success": "success", "value.outcome.failure": "failure",
    "value.outcome.verified": "verified", "value.outcome.forged": "forged",
    "value.what.login": "login", "value.what.privilege": "privilege",
}


def has(key: str) -> bool:
    return key in ZH


def translator(lang: str) -> Callable[[str], str]:
    if lang == "en":
        return lambda key: EN.get(key) or (key.split(".", 1)[1] if key.startswith("field.")
                                           else key)
    return lambda key: ZH.get(key, EN.get(key, key))
